//! `bulkhead client`: one tenant's data, with that tenant's token.

use std::io::{BufRead, IsTerminal, Write};

use bulkhead_client::{Filter, Point, TenantClient};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{CliResult, print_json};

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The tenant to work on.
    #[arg(long, env = "BULKHEAD_TENANT", global = true)]
    tenant: Option<String>,
    #[command(flatten)]
    connection: super::Connection,
    /// The tenant's token.
    #[arg(long, env = "BULKHEAD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Upsert points from JSON lines: {"id": "...", "vector": [...], "payload": {...}, "text": "..."};
    /// a line with text and no vector is embedded by the server.
    Upsert {
        /// The file to read; `-` reads standard input.
        #[arg(long)]
        file: String,
        /// Points per request.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// The nearest points to a vector or to a text.
    Search {
        /// The query vector, as a JSON array.
        #[arg(long, required_unless_present = "text", conflicts_with = "text")]
        vector: Option<String>,
        /// The query text, embedded by the server.
        #[arg(long)]
        text: Option<String>,
        #[arg(short, long, default_value_t = 10)]
        k: u32,
        /// A filter in JSON: {"must": [{"key": "k", "match": {"value": "v"}}], ...}.
        #[arg(long)]
        filter: Option<String>,
        /// Candidate list size of the graph search.
        #[arg(long)]
        ef: Option<u32>,
    },
    /// Vectors for texts, from the embedder of the tenant's trust class.
    Embed {
        /// A text to embed (repeatable).
        #[arg(long, required = true)]
        text: Vec<String>,
    },
    /// The registered models whose lineage holds this tenant's data.
    Lineage,
    /// This tenant's access log: its calls by token, RPC and outcome, a
    /// minute at a time, oldest first.
    AccessLog(super::AccessLogPage),
    /// Points by id.
    Get {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete points by id.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Number of points, optionally matching a filter.
    Count {
        #[arg(long)]
        filter: Option<String>,
    },
    /// One page of points in id order.
    Scroll {
        /// The previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// A JSON filter in its wire form; the server validates it.
fn parse_filter(
    raw: Option<&str>,
) -> Result<Option<Filter>, Box<dyn std::error::Error + Send + Sync>> {
    let Some(raw) = raw else { return Ok(None) };
    let value: Value =
        serde_json::from_str(raw).map_err(|e| format!("--filter is not JSON: {e}"))?;
    Ok(Some(
        Filter::from_json(&value).map_err(|e| format!("--filter: {e}"))?,
    ))
}

fn point_json(p: &Point) -> Value {
    let mut v = json!({ "id": p.id });
    if let Some(payload) = &p.payload {
        v["payload"] = Value::Object(payload.clone());
    }
    if !p.vector.is_empty() {
        v["vector"] = json!(p.vector);
    }
    if let Some(text) = &p.text {
        v["text"] = json!(text);
    }
    v
}

/// One JSON line of an upsert file.
fn parse_line(line: &str, number: usize) -> Result<Point, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        id: String,
        #[serde(default)]
        vector: Vec<f32>,
        #[serde(default)]
        payload: Option<serde_json::Map<String, Value>>,
        #[serde(default)]
        text: Option<String>,
    }
    let parsed: Line = serde_json::from_str(line).map_err(|e| format!("line {number}: {e}"))?;
    if parsed.vector.is_empty() && parsed.text.as_deref().unwrap_or("").is_empty() {
        return Err(format!("line {number}: a point needs a vector or a text"));
    }
    Ok(Point {
        id: parsed.id,
        vector: parsed.vector,
        payload: parsed.payload,
        text: parsed.text,
    })
}

async fn upsert(
    client: &TenantClient,
    file: &str,
    batch: usize,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(fs_err::File::open(file)?))
    };
    let progress = std::io::stderr().is_terminal();
    let batch = batch.clamp(1, bulkhead_client::MAX_BATCH_POINTS);
    let (mut pending, mut written) = (Vec::with_capacity(batch), 0u64);
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        pending.push(
            parse_line(&line, i + 1)
                .map_err(|e| format!("{e} ({written} points were written before it)"))?,
        );
        if pending.len() == batch {
            written += client.upsert(std::mem::take(&mut pending)).await?;
            if progress {
                eprint!("\rupserted {written} points");
                let _ = std::io::stderr().flush();
            }
        }
    }
    if !pending.is_empty() {
        written += client.upsert(pending).await?;
    }
    if progress {
        eprintln!("\rupserted {written} points");
    }
    Ok(written)
}

impl ClientArgs {
    pub async fn execute(self) -> CliResult {
        let tenant = self
            .tenant
            .ok_or("the tenant is required: --tenant or BULKHEAD_TENANT")?;
        let token = self
            .token
            .ok_or("the tenant's token is required: --token or BULKHEAD_TOKEN")?;
        let client = TenantClient::with_channel(self.connection.channel().await?, tenant, token)?;
        let json = self.json;
        match self.command {
            ClientCommand::Upsert { file, batch } => {
                let written = upsert(&client, &file, batch).await?;
                if json {
                    print_json(&json!({ "upserted": written }))
                } else {
                    println!("upserted {written} points")
                }
            }
            ClientCommand::Search {
                vector,
                text,
                k,
                filter,
                ef,
            } => {
                let search = match (vector, text) {
                    (Some(vector), _) => client
                        .search(serde_json::from_str(&vector).map_err(|e| {
                            format!("--vector is not a JSON array of numbers: {e}")
                        })?),
                    (None, Some(text)) => client.search_text(text),
                    (None, None) => return Err("give --vector or --text".into()),
                };
                let mut search = search.k(k).with_payload();
                if let Some(f) = parse_filter(filter.as_deref())? {
                    search = search.filter(f);
                }
                if let Some(ef) = ef {
                    search = search.ef(ef);
                }
                let hits = search.send().await?;
                if json {
                    let list: Vec<Value> = hits
                        .iter()
                        .map(|h| json!({ "id": h.id, "score": h.score, "payload": h.payload, "text": h.text }))
                        .collect();
                    print_json(&json!({ "points": list }));
                } else {
                    hits.iter().for_each(|h| println!("{}\t{}", h.id, h.score));
                }
            }
            ClientCommand::Embed { text } => {
                let (vectors, model) = client.embed(text).await?;
                if json {
                    // One text: {"vector": [...]}; several: {"vectors": [[...], ...]}.
                    match <[Vec<f32>; 1]>::try_from(vectors) {
                        Ok([vector]) => print_json(&json!({ "vector": vector, "model": model })),
                        Err(vectors) => print_json(&json!({ "vectors": vectors, "model": model })),
                    }
                } else {
                    for vector in vectors {
                        println!("{}", json!(vector));
                    }
                }
            }
            ClientCommand::Lineage => {
                let models = client.lineage().await?;
                if json {
                    let list: Vec<_> = models
                        .iter()
                        .map(|m| json!({ "name": m.name, "digest": m.digest, "registered_unix_ms": m.registered_unix_ms }))
                        .collect();
                    print_json(&json!({ "models": list }));
                } else {
                    for m in models {
                        println!("{}\t{}", m.digest, m.name);
                    }
                }
            }
            ClientCommand::AccessLog(page) => {
                let page = client
                    .access_log(page.cursor.as_deref(), page.since_ms, page.limit)
                    .await?;
                super::print_access_log(json, &page.entries, &page.next_cursor);
            }
            ClientCommand::Get { ids } => {
                let points = client.get(ids, true, true).await?;
                if json {
                    print_json(
                        &json!({ "points": points.iter().map(point_json).collect::<Vec<_>>() }),
                    );
                } else {
                    points.iter().for_each(|p| println!("{}", point_json(p)));
                }
            }
            ClientCommand::Delete { ids } => {
                let deleted = client.delete(ids).await?;
                if json {
                    print_json(&json!({ "deleted": deleted }))
                } else {
                    println!("deleted {deleted} points")
                }
            }
            ClientCommand::Count { filter } => {
                let count = client.count(parse_filter(filter.as_deref())?).await?;
                if json {
                    print_json(&json!({ "count": count }))
                } else {
                    println!("{count}")
                }
            }
            ClientCommand::Scroll { cursor, limit } => {
                let page = client.scroll(cursor, limit, None).await?;
                if json {
                    print_json(&json!({
                        "points": page.points.iter().map(point_json).collect::<Vec<_>>(),
                        "next_cursor": page.next_cursor,
                    }));
                } else {
                    page.points
                        .iter()
                        .for_each(|p| println!("{}", point_json(p)));
                    if let Some(c) = page.next_cursor {
                        eprintln!("next cursor: {c}");
                    }
                }
            }
        }
        Ok(())
    }
}
