//! The errors layer: every RPC naming the victim with the prober's token
//! must fail exactly as it does naming a tenant that does not exist, and
//! no error message may name another canary.

use bulkhead_client::{Error, Point, TenantClient};
use tonic::transport::Channel;

use super::canary::{Canary, mentions};
use super::report::Probe;
use super::{Fallible, POINTS};

pub(super) fn layer() -> Probe {
    Probe::new(
        "errors",
        "tokens are bound to one tenant; a foreign tenant and a missing one get the same PERMISSION_DENIED",
    )
}

/// The prober's token aimed at the victim and at a tenant that does not
/// exist: both calls of one RPC must be refused alike.
struct Aim<'a> {
    errors: &'a mut Probe,
    messages: &'a mut Vec<String>,
    dir: &'a str,
    foreign: TenantClient,
    missing: TenantClient,
}

impl Aim<'_> {
    async fn refused_alike(
        &mut self,
        rpc: &str,
        call: impl AsyncFn(&TenantClient) -> Result<(), Error>,
    ) {
        let dir = self.dir;
        self.errors.ran(format!("{dir} {rpc} naming it"));
        match (call(&self.foreign).await, call(&self.missing).await) {
            (Err(Error::PermissionDenied(x)), Err(Error::PermissionDenied(y))) if x == y => {
                self.messages.push(x);
            }
            (Ok(()), _) => self
                .errors
                .leak(format!("{dir}: {rpc} naming it succeeded")),
            (a, b) => self.errors.leak(format!(
                "{dir}: {rpc} naming it and naming no tenant differ: {} / {}",
                a.err().map_or("ok".into(), |e| e.to_string()),
                b.err().map_or("ok".into(), |e| e.to_string())
            )),
        }
    }
}

/// Runs every RPC naming the victim; what the refusals said goes to
/// `messages`.
pub(super) async fn probe(
    errors: &mut Probe,
    dir: &str,
    channel: &Channel,
    (prober, victim): (&Canary, &Canary),
    missing_name: String,
    messages: &mut Vec<String>,
) -> Fallible<()> {
    let mut aim = Aim {
        errors,
        messages,
        dir,
        foreign: TenantClient::with_channel(channel.clone(), victim.name.clone(), &prober.token)?,
        missing: TenantClient::with_channel(channel.clone(), missing_name, &prober.token)?,
    };
    let (vector, ids, text) = (&victim.vectors[0], &victim.ids, &victim.texts[0]);
    aim.refused_alike("Upsert", async |c| {
        c.upsert(vec![Point::new("x", vector.clone())])
            .await
            .map(drop)
    })
    .await;
    aim.refused_alike("Get", async |c| {
        c.get(ids.clone(), true, true).await.map(drop)
    })
    .await;
    aim.refused_alike("Delete", async |c| c.delete(ids.clone()).await.map(drop))
        .await;
    aim.refused_alike("Count", async |c| c.count(None).await.map(drop))
        .await;
    aim.refused_alike("Scroll", async |c| c.scroll(None, 10, None).await.map(drop))
        .await;
    aim.refused_alike("Search", async |c| {
        c.search(vector.clone()).send().await.map(drop)
    })
    .await;
    aim.refused_alike("Embed", async |c| {
        c.embed(vec![text.clone()]).await.map(drop)
    })
    .await;
    let left = victim.client.count(None).await?;
    if left != POINTS as u64 {
        aim.errors.leak(format!(
            "{dir}: after the foreign calls it has {left} points"
        ));
    }
    Ok(())
}

/// The last errors probe: no message the probers saw names a canary.
pub(super) fn check_messages(errors: &mut Probe, messages: &[String], canaries: &[Canary]) {
    errors.ran(format!(
        "{} error messages checked for the other canaries' names",
        messages.len()
    ));
    for m in messages {
        for c in canaries {
            if mentions(m, c) {
                errors.leak(format!("an error names {}: {m}", c.name));
            }
        }
    }
}
