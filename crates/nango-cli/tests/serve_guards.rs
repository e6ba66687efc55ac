//! What `nango serve` refuses or warns about at start, and what its text logs do with hostile
//! request values (security review 2: F2 open bind, F13 log forging, F14 short keys, F18 ':' in
//! the key), run as the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const NANGO: &str = env!("CARGO_BIN_EXE_nango");

/// Settings of the test runner's environment that would change what the server does.
const INHERITED_SETTINGS: &[&str] = &[
    "NANGO_SECRET_KEY",
    "NANGO_DATABASE_URL",
    "NANGO_SERVER_URL",
    "NANGO_CALLBACK_URL",
    "NANGO_BIND",
    "NANGO_ALLOW_OPEN_API",
    "NANGO_PROVIDERS_FILE",
    "NANGO_DB_HOST",
    "SERVER_PORT",
    "PORT",
    "LOG_LEVEL",
    "NANGO_LOG_FORMAT",
    "NANGO_ENCRYPTION_KEY",
    "NANGO_WEBHOOK_URLS",
];

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `nango serve` on a fresh SQLite file in `dir`, on `port`, with `env`.
fn serve(dir: &TempDir, port: u16, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(NANGO);
    for name in INHERITED_SETTINGS {
        command.env_remove(name);
    }
    command
        .arg("serve")
        .env("SERVER_PORT", port.to_string())
        .env(
            "NANGO_DATABASE_URL",
            format!("sqlite://{}/t.db", dir.path().display()),
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Runs a server that should refuse to start; its output once it exited (within 60 s).
fn refused(env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = serve(&dir, unused_port(), env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nango serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "nango serve started where it should have refused:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// A running server whose stdout and stderr go to a file.
struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = unused_port();
        let log = dir.path().join("server.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = serve(&dir, port, env)
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("spawn nango serve");
        let mut server = Server {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(port, "/health").is_none() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("nango serve exited with {status}:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "no answer in 60 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server and returns everything it wrote.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:`port`; the whole response, if any.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1").then_some(response)
}

#[test]
fn serving_without_a_key_on_every_interface_is_refused_unless_allowed() {
    let output = refused(&[("NANGO_BIND", "0.0.0.0")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("could not start"), "{stderr}");
    for said in ["NANGO_SECRET_KEY", "NANGO_ALLOW_OPEN_API", "0.0.0.0"] {
        assert!(stderr.contains(said), "{said} not in: {stderr}");
    }
    // The explicit opt-in starts it (dangerous, documented as such).
    let server = Server::start(&[("NANGO_BIND", "0.0.0.0"), ("NANGO_ALLOW_OPEN_API", "true")]);
    assert!(get(server.port, "/").is_some_and(|r| r.starts_with("HTTP/1.1 200")));
    drop(server);
    // So does a key, the way the Docker image runs.
    let server = Server::start(&[
        ("NANGO_BIND", "0.0.0.0"),
        ("NANGO_SECRET_KEY", "a-long-random-secret-key"),
    ]);
    assert!(get(server.port, "/").is_some_and(|r| r.starts_with("HTTP/1.1 200")));
}

#[test]
fn a_secret_key_with_a_colon_is_refused_at_start() {
    let key = "abcdefgh:ijklmnopqrst";
    let output = refused(&[("NANGO_SECRET_KEY", key)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NANGO_SECRET_KEY") && stderr.contains("':'"),
        "{stderr}"
    );
    assert!(!stderr.contains(key), "the key was printed: {stderr}");
}

#[test]
fn a_short_secret_key_is_warned_about_at_start() {
    let server = Server::start(&[("NANGO_SECRET_KEY", "short-key"), ("LOG_LEVEL", "warn")]);
    let log = server.stop();
    assert!(log.contains("shorter than 16 characters"), "{log}");
    assert!(!log.contains("short-key"), "the key was logged: {log}");
    let server = Server::start(&[
        ("NANGO_SECRET_KEY", "a-long-random-secret-key"),
        ("LOG_LEVEL", "warn"),
    ]);
    let log = server.stop();
    assert!(!log.contains("shorter than"), "{log}");
}

#[test]
fn request_values_cannot_forge_text_log_lines() {
    let server = Server::start(&[("LOG_LEVEL", "info"), ("NANGO_LOG_FORMAT", "text")]);
    let forged = "2026-01-01T00:00:00Z ERROR forged";
    let answer = get(
        server.port,
        "/oauth/callback?state=%1B%5B31mX%0A2026-01-01T00:00:00Z%20ERROR%20forged&error_description=a%0D%0A2026-01-01T00:00:00Z%20ERROR%20forged",
    );
    assert!(answer.is_some());
    // The flow's failure is logged at info; wait until the line is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("forged") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stop();
    assert!(
        log.contains("ERROR forged"),
        "the value was not logged: {log}"
    );
    for line in log.lines() {
        assert!(!line.starts_with(forged), "forged line: {log}");
        assert!(!line.contains('\u{1b}'), "terminal escape in: {line:?}");
    }
    assert!(
        log.contains("\\n2026-01-01T00:00:00Z ERROR forged"),
        "{log}"
    );
}
