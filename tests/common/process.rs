//! The real `pasar serve` binary as a child process, for what an in-process server cannot
//! show: SIGTERM, kill -9 and a restart on the same database.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

pub struct Served {
    child: Child,
    log: PathBuf,
    pub port: u16,
    pub base: String,
}

pub fn free_port() -> u16 {
    // Bound and released at once; the server binds it a moment later.
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

pub fn random_secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

impl Served {
    /// Starts `pasar serve --no-migrate` on `database_url` and waits until `/readyz` answers.
    pub async fn start(database_url: &str, port: u16, secret: &str) -> Self {
        Self::start_with(database_url, port, secret, &[]).await
    }

    /// [`Served::start`] with more environment (`PASAR_…` settings).
    pub async fn start_with(
        database_url: &str,
        port: u16,
        secret: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::env::temp_dir().join(format!("pasar-serve-{}.log", uuid::Uuid::now_v7()));
        let log_file = File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pasar"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        for (k, _) in std::env::vars_os() {
            if k == "DATABASE_URL" || k.to_string_lossy().starts_with("PASAR_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--no-migrate"])
            .env("DATABASE_URL", database_url)
            .env("PASAR_BIND", format!("127.0.0.1:{port}"))
            .env("PASAR_JWT_SECRET", secret)
            .env("PASAR_TIMER_INTERVAL_MS", "0")
            .env("PASAR_LOGIN_LIMIT_IP", "100000")
            .env("PASAR_DB_POOL_SIZE", "8")
            .env("PASAR_WORKERS", "2")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        let served = Served {
            child: cmd.spawn().expect("spawn pasar serve"),
            log,
            port,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", served.base)).send().await
                && r.status() == 200
            {
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "pasar serve did not become ready:\n{}",
                served.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(8000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {sig} failed");
    }

    /// SIGKILL: no draining, no cleanup, like a power cut of the process.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Waits for the process to end by itself.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pasar serve did not exit:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pasar serve log (tail) ---\n{}", self.log_tail());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
