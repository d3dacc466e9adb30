//! TLS and mutual TLS over the real server and the real sidecar binary,
//! with certificates made at test time (rcgen): every service answers over
//! TLS, a TLS server refuses plaintext and every client it cannot verify,
//! SIGHUP swaps the certificate without dropping a connection, the local
//! sidecar inherits none of the server's secrets, and every file the server
//! writes is its owner's alone.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bulkhead::api::{AdminToken, Embedders};
use bulkhead::engine::EngineConfig;
use bulkhead::server::{ServeOptions, Services};
use bulkhead::tls::{ServerTls, TlsFiles};
use bulkhead_client::{AdminClient, Metric, Point, TenantClient, Tls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::common::{
    ADMIN, EMBEDDER_READY, Running, SERVER_READY, TestServer, serve_with_local_embedder,
    spawn_serving,
};
use crate::embed::SECRET;

/// A certificate authority made for one test.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), good for a
    /// server and a client: (certificate PEM, key PEM).
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server certificate for loopback as `<dir>/<stem>.pem` and its key
    /// as `<dir>/<stem>.key` (0600).
    pub fn server_files(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.leaf(&["localhost", "127.0.0.1"]);
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        fs_err::write(&cert_path, cert).unwrap();
        write_secret(&key_path, key.as_bytes());
        (cert_path, key_path)
    }

    /// This CA's certificate as `<dir>/<stem>.pem`.
    pub fn file(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        fs_err::write(&path, &self.pem).unwrap();
        path
    }

    /// A client that trusts `self` and presents a certificate of `signer`.
    pub fn client_of(&self, signer: &Ca) -> Tls {
        let (cert, key) = signer.leaf(&["app.example"]);
        Tls::new()
            .ca_certificate(self.pem.clone())
            .client_identity(cert, key)
    }
}

fn write_secret(path: &Path, bytes: &[u8]) {
    fs_err::write(path, bytes).unwrap();
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The sidecar binary over TLS, requiring a client certificate that
/// `clients` signs; returns it and its https:// URL.
fn tls_sidecar(dir: &Path, ca: &Ca, clients: &Ca) -> (Running, String) {
    let (cert, key) = ca.server_files(dir, "sidecar");
    let client_ca = clients.file(dir, "sidecar-clients-ca");
    let secret = dir.join("embedder.secret");
    write_secret(&secret, SECRET.as_bytes());
    let binary = Path::new(env!("CARGO_BIN_EXE_bulkhead")).with_file_name("bulkhead-embedder");
    let mut command = Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--trust-classes", "default"])
        .arg("--secret-file")
        .arg(&secret)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(&client_ca);
    let (child, url, _) = spawn_serving(command, EMBEDDER_READY);
    (child, url.replacen("http://", "https://", 1))
}

/// The in-process server over TLS that requires client certificates
/// `clients` signs, its channel opened as `client`.
async fn tls_server(
    dir: &Path,
    ca: &Ca,
    clients: &Ca,
    client: &Tls,
    embedders: Embedders,
) -> TestServer {
    let (cert, key) = ca.server_files(dir, "server");
    let files = TlsFiles {
        cert,
        key,
        client_ca: Some(clients.file(dir, "clients-ca")),
    };
    let options = ServeOptions {
        tls: Some(ServerTls::load(files).unwrap()),
        ..ServeOptions::default()
    };
    let admin = AdminToken::new(ADMIN).unwrap();
    TestServer::start_with_options(
        EngineConfig::default(),
        |registry| Services::new(registry, admin, embedders),
        options,
        client,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_over_mutual_tls_and_the_sidecar_link_too() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let dir = tempfile::tempdir().unwrap();
    let (ca, clients) = (Ca::new("bulkhead test CA"), Ca::new("bulkhead clients CA"));
    // The sidecar trusts only the server's own client certificate.
    let (_sidecar, sidecar_url) = tls_sidecar(dir.path(), &ca, &clients);
    let urls = HashMap::from([("default".to_string(), sidecar_url)]);
    let embedders = Embedders::new(SECRET.into(), &urls, &ca.client_of(&clients)).unwrap();
    let server = tls_server(
        dir.path(),
        &ca,
        &clients,
        &ca.client_of(&clients),
        embedders,
    )
    .await;
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // Admin.
    let admin = AdminClient::with_channel(server.channel.clone(), ADMIN).unwrap();
    admin
        .create_tenant("texty", 384, Metric::Cosine)
        .await
        .unwrap();
    let token = admin.issue_token("texty").await.unwrap().token;
    // Points, and through it the sidecar over mutual TLS.
    let texty = TenantClient::with_channel(server.channel.clone(), "texty", token).unwrap();
    let (vectors, _) = texty
        .embed(vec!["a lighthouse at dusk".into()])
        .await
        .unwrap();
    assert_eq!(vectors[0].len(), 384);
    texty
        .upsert(vec![Point::new("beam", vectors[0].clone())])
        .await
        .unwrap();
    let hits = texty.search(vectors[0].clone()).k(1).send().await.unwrap();
    assert_eq!(hits[0].id, "beam");
    // Health and reflection.
    let status = HealthClient::new(server.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "bulkhead.v1.PointsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(server.channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(reflection.message().await.unwrap().is_some());
    server.stop().await;
}

/// Lists tenants over a fresh connection to `url` made as `tls` says.
async fn list_over(url: &str, tls: &Tls) -> Result<usize, String> {
    let channel = bulkhead_client::connect(url, tls)
        .await
        .map_err(|e| e.to_string())?;
    let admin = AdminClient::with_channel(channel, ADMIN).map_err(|e| e.to_string())?;
    admin
        .list_tenants()
        .await
        .map(|t| t.len())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutual_tls_server_refuses_plaintext_strangers_and_clients_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, clients, stranger) = (
        Ca::new("server CA"),
        Ca::new("clients CA"),
        Ca::new("other CA"),
    );
    let server = tls_server(
        dir.path(),
        &ca,
        &clients,
        &ca.client_of(&clients),
        Embedders::none(),
    )
    .await;
    let url = server.url.clone();
    assert_eq!(list_over(&url, &ca.client_of(&clients)).await, Ok(0));

    let no_certificate = Tls::new().ca_certificate(ca.pem.clone());
    let refused = list_over(&url, &no_certificate).await;
    assert!(
        refused.is_err(),
        "a client without a certificate: {refused:?}"
    );
    let refused = list_over(&url, &ca.client_of(&stranger)).await;
    assert!(refused.is_err(), "a certificate of another CA: {refused:?}");
    // The client side: a server certificate it cannot verify.
    let refused = list_over(&url, &stranger.client_of(&clients)).await;
    let message = refused.expect_err("a client that does not trust the server's CA");
    assert!(
        message.contains("UnknownIssuer") || message.contains("invalid peer certificate"),
        "{message}"
    );
    // Plaintext to a TLS port.
    let plaintext = url.replacen("https://", "http://", 1);
    let refused = list_over(&plaintext, &Tls::default()).await;
    assert!(refused.is_err(), "plaintext: {refused:?}");
    // And TLS settings with a plaintext address are refused, not ignored.
    let refused = list_over(&plaintext, &ca.client_of(&clients)).await;
    assert!(refused.unwrap_err().contains("use https://"));

    // The CLI: --ca-cert, --client-cert, --client-key.
    let (cert, key) = clients.leaf(&["ops.example"]);
    let (cert_file, key_file) = (dir.path().join("ops.pem"), dir.path().join("ops.key"));
    fs_err::write(&cert_file, cert).unwrap();
    write_secret(&key_file, key.as_bytes());
    let ca_file = ca.file(dir.path(), "ca");
    let mut args = vec!["admin", "tenant", "list", "--json", "--ca-cert"];
    args.push(ca_file.to_str().unwrap());
    let refused = crate::cli::bulkhead(&url, "", &args, None);
    assert!(
        !refused.status.success(),
        "the CLI without a client certificate"
    );
    args.extend(["--client-cert", cert_file.to_str().unwrap()]);
    args.extend(["--client-key", key_file.to_str().unwrap()]);
    let listed = crate::cli::bulkhead(&url, "", &args, None);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "the CLI over mutual TLS: {stderr}");
    server.stop().await;
}

#[test]
fn a_key_file_other_users_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("server CA");
    let (cert, key) = ca.server_files(dir.path(), "server");
    let files = TlsFiles {
        cert,
        key: key.clone(),
        client_ca: None,
    };
    assert!(ServerTls::load(files.clone()).is_ok());
    fs_err::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let message = ServerTls::load(files).unwrap_err().to_string();
    assert!(message.contains("chmod 600"), "{message}");
}

/// Waits (at most 20 s) for a line of `log` that holds `needle`.
fn wait_for_log(log: &crate::common::Log, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.lock().unwrap().iter().any(|line| line.contains(needle)) {
        assert!(Instant::now() < deadline, "no log line says {needle:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Running, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (Ca::new("CA before"), Ca::new("CA after"));
    let (cert, key) = before.server_files(dir.path(), "server");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-local-embedder"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env_remove("BULKHEAD_CONFIG")
        .env_remove("BULKHEAD_EMBEDDERS");
    let (child, url, log) = spawn_serving(command, SERVER_READY);
    let url = url.replacen("http://", "https://", 1);
    let trusts_before = Tls::new().ca_certificate(before.pem.clone());
    let trusts_after = Tls::new().ca_certificate(after.pem.clone());
    let open = bulkhead_client::connect(url.clone(), &trusts_before)
        .await
        .unwrap();
    let open = AdminClient::with_channel(open, ADMIN).unwrap();
    open.list_tenants().await.unwrap();

    let (new_cert, new_key) = after.leaf(&["localhost", "127.0.0.1"]);
    fs_err::write(&cert, new_cert).unwrap();
    write_secret(&key, new_key.as_bytes());
    signal(&child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while list_over(&url, &trusts_after).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never offered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection made before the reload still answers: had it been
    // dropped, the channel's reconnect would meet the new certificate,
    // which it does not trust.
    open.list_tenants().await.unwrap();
    assert!(list_over(&url, &trusts_before).await.is_err());

    // A reload that fails keeps the certificate in use.
    fs_err::write(&cert, "not a certificate").unwrap();
    signal(&child, "-HUP");
    wait_for_log(&log, "TLS certificate not reloaded");
    assert_eq!(list_over(&url, &trusts_after).await, Ok(0));
    open.list_tenants().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, log) = crate::common::serve(dir.path(), true);
    signal(&child, "-HUP");
    wait_for_log(&log, "no TLS certificate to reload");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    let admin = AdminClient::connect(url, ADMIN).await.unwrap();
    admin.list_tenants().await.unwrap();
}

/// The pids whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in fs_err::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs_err::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

#[test]
fn the_local_sidecar_inherits_none_of_the_servers_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // serve_with_local_embedder sets BULKHEAD_ADMIN_TOKEN; the test's own
    // environment holds whatever else a deployment would.
    let (server, _, _) = serve_with_local_embedder(dir.path());
    let sidecars = children_of(server.id());
    assert_eq!(sidecars.len(), 1, "one local sidecar: {sidecars:?}");
    let environ = fs_err::read(format!("/proc/{}/environ", sidecars[0])).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    let names: Vec<&str> = environ
        .split('\0')
        .filter_map(|var| var.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(
        !environ.contains(ADMIN),
        "the admin token reached the sidecar"
    );
    for name in &names {
        assert!(
            !name.starts_with("BULKHEAD_") && !name.contains("SECRET") && !name.contains("TOKEN"),
            "the sidecar inherited {name}"
        );
    }
    // The secret is not in its argv either (it came down stdin).
    let argv = fs_err::read(format!("/proc/{}/cmdline", sidecars[0])).unwrap();
    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
    assert!(!argv.contains("secret"), "{argv}");
}

/// Every file and folder under `dir` with a mode that lets others in.
fn loose(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs_err::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:04o}", path.display()));
        }
        if meta.is_dir() {
            stack.extend(fs_err::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_server_writes_is_its_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A folder made with a loose mode is tightened.
    fs_err::create_dir(&data).unwrap();
    fs_err::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-local-embedder"])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .env_remove("BULKHEAD_CONFIG")
        .env_remove("BULKHEAD_EMBEDDERS");
    let (mut child, url, _) = spawn_serving(command, SERVER_READY);
    let token_file = data.join("admin.token");
    let admin_token = fs_err::read_to_string(&token_file).unwrap();
    let admin = AdminClient::connect(url.clone(), admin_token.trim())
        .await
        .unwrap();
    admin.create_tenant("modes", 4, Metric::L2).await.unwrap();
    let token = admin.issue_token("modes").await.unwrap().token;
    let client = TenantClient::connect(url, "modes", token).await.unwrap();
    let points = (0..2_000)
        .map(|i| Point::new(format!("p{i}"), vec![i as f32, 1.0, 2.0, 3.0]))
        .collect();
    client.upsert(points).await.unwrap();
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    // RocksDB's tables, logs and OPTIONS, the graph snapshot, the audit log,
    // the admin token: nothing readable by others.
    assert!(data.join("audit.log").exists());
    assert_eq!(loose(&data), Vec::<String>::new());

    // An admin token file others may read is refused, and left as it was.
    fs_err::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-local-embedder"])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert_eq!(fs_err::read_to_string(&token_file).unwrap(), admin_token);
}
