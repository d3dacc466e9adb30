//! The embedding sidecar `bulkhead serve` starts for itself when no sidecar
//! is configured and the default model is in the models directory, so the
//! embedded default needs one command. It is a child process on a loopback
//! port with a fresh random secret, serving every trust class (each with its
//! own queue and batcher there). It stops with the server: on a clean stop
//! the server closes the child's stdin and waits; if the server dies, the
//! kernel closes that pipe and the child stops by itself.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::api::Embedders;
use crate::config::ConfigError;

/// The model the local sidecar serves.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
const BINARY: &str = "bulkhead-embedder";
/// The environment variables the sidecar inherits; all others are dropped.
const CHILD_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "RAYON_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
];
/// How long a stopping sidecar may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct LocalEmbedder {
    child: Child,
    /// Held open for the child's lifetime; closing it tells the child to stop.
    stdin: Option<ChildStdin>,
    url: String,
}

impl LocalEmbedder {
    /// Starts the sidecar if the default model is in `models_dir`: Ok(None)
    /// when it is not. Waits until the sidecar serves (model loaded).
    pub fn start(models_dir: &Path) -> Result<Option<(LocalEmbedder, Embedders)>, ConfigError> {
        let model = models_dir.join(DEFAULT_MODEL);
        if !model.join("config.json").is_file() {
            return Ok(None);
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| ConfigError::new(format!("no randomness available: {e}")))?;
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let mut command = Command::new(binary());
        // A scrubbed environment: the server's holds the admin token
        // (BULKHEAD_ADMIN_TOKEN) and other secrets the sidecar has no use
        // for. What it keeps steers logging, threads and the GPU.
        command.env_clear();
        for (name, value) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| CHILD_ENV.contains(&name)) {
                command.env(name, value);
            }
        }
        let mut child = command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--trust-classes",
                "*",
                "--supervised",
            ])
            .arg("--models-dir")
            .arg(models_dir)
            .args(["--model", DEFAULT_MODEL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| ConfigError::new(format!("cannot start {BINARY}: {e}")))?;
        // The secret goes down the stdin pipe: argv is visible to every
        // local user, and the environment to anything that reads it.
        let mut stdin = child.stdin.take();
        if let Some(pipe) = stdin.as_mut() {
            use std::io::Write as _;
            if let Err(e) = writeln!(pipe, "{secret}").and_then(|()| pipe.flush()) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ConfigError::new(format!(
                    "cannot hand {BINARY} its secret: {e}"
                )));
            }
        }
        let announced = child.stdout.take().and_then(|out| {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).ok()?;
            line.trim().strip_prefix("listening ").map(str::to_string)
        });
        let Some(addr) = announced else {
            let status = child.wait().map_err(|e| ConfigError::new(e.to_string()))?;
            return Err(ConfigError::new(format!(
                "{BINARY} exited before serving ({status})"
            )));
        };
        let url = format!("http://{addr}");
        let embedders = Embedders::local(secret, &url)?;
        Ok(Some((LocalEmbedder { child, stdin, url }, embedders)))
    }

    /// Where it serves, e.g. "http://127.0.0.1:40123".
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the sidecar: closes its stdin, waits, and kills it if it
    /// lingers.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tracing::warn!("the local embedder did not stop in time; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalEmbedder {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.shut_down();
        }
    }
}

/// `bulkhead-embedder` beside this executable, else from PATH.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().ok();
    // Beside this binary, or beside its folder for cargo's test and
    // benchmark binaries (target/release/deps/).
    exe.iter()
        .flat_map(|exe| {
            [exe.parent(), exe.parent().and_then(Path::parent)]
                .into_iter()
                .flatten()
                .map(|dir| dir.join(BINARY))
        })
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(BINARY))
}
