//! PostgreSQL for tests: a fresh database per test on the shared server, or a private server on a
//! free port that a test may stop and start (for outage tests).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;

/// The shared server's admin URL.
pub fn admin_url() -> String {
    std::env::var("ONEKEY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database created for one test; dropped by `.ci/run` leftovers cleanup or `drop_now`.
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates `onekey_t_<random>`.
    pub async fn create() -> TestDatabase {
        let name = format!("onekey_t_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("connect to PostgreSQL at 127.0.0.1:5432");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        TestDatabase { name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin);
        format!("{base}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, off the async runtime; `.ci/run` also drops leftovers.
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "-q",
                "-c",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A private PostgreSQL server on a free port, owned by the test.
pub struct PrivatePostgres {
    /// Socket directory and log; the data directory too unless one was given.
    dir: PathBuf,
    data: PathBuf,
    /// Extra `-c name=value` settings given at every start.
    settings: String,
    /// Port it listens on.
    pub port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(&root)
        .expect("PostgreSQL is installed")
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").join("bin")
}

fn as_postgres(cmd: &str, args: &[&str]) -> std::process::Output {
    let mut c = if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]);
        c
    } else {
        Command::new(cmd)
    };
    c.args(args).output().expect("run a PostgreSQL tool")
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// initdb + start on a free port.
    pub fn start() -> PrivatePostgres {
        let pg = PrivatePostgres::init(None);
        pg.resume();
        pg
    }

    /// initdb into `data` (a directory that must not exist yet; its parent is given to the
    /// `postgres` user), without starting: the caller may mount something over it first.
    pub fn init_at(data: PathBuf) -> PrivatePostgres {
        PrivatePostgres::init(Some(data))
    }

    /// Runs later starts from `data` instead (the same cluster seen through another mount).
    pub fn run_from(&mut self, data: PathBuf) {
        self.data = data;
    }

    /// The settings every later start passes, e.g. `-c fsync=off`.
    pub fn set(&mut self, settings: &str) {
        self.settings = settings.to_string();
    }

    fn init(data: Option<PathBuf>) -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("onekey-pg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("pg dir");
        if nix_is_root() {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let bin = pg_bin();
        let data = data.unwrap_or_else(|| dir.join("data"));
        if nix_is_root() {
            if let Some(parent) = data.parent() {
                let _ = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(parent)
                    .status();
            }
        }
        let out = as_postgres(
            bin.join("initdb").to_str().unwrap_or("initdb"),
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PrivatePostgres {
            dir,
            data,
            settings: "-c fsync=on".into(),
            port,
            bin,
        }
    }

    /// `postgres://…/postgres` on this instance.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let data = &self.data;
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {}",
            self.port,
            self.dir.display(),
            self.settings
        );
        let out = as_postgres(
            self.bin.join("pg_ctl").to_str().unwrap_or("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-o",
                &opts,
                "-l",
                self.dir.join("log").to_str().unwrap_or(""),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops it immediately (an outage).
    pub fn halt(&self) {
        self.stop_mode("immediate");
    }

    /// Stops it cleanly: a shutdown checkpoint, everything on disk.
    pub fn shut_down(&self) {
        self.stop_mode("fast");
    }

    fn stop_mode(&self, mode: &str) {
        let data = &self.data;
        let out = as_postgres(
            self.bin.join("pg_ctl").to_str().unwrap_or("pg_ctl"),
            &["-D", data.to_str().unwrap_or(""), "-m", mode, "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = &self.data;
        let _ = as_postgres(
            self.bin.join("pg_ctl").to_str().unwrap_or("pg_ctl"),
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
