//! Configuration, through the real binary: file < environment < flags, `--help`,
//! `--print-config`, refused configurations naming their field, and JSON logs.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod server_common;

use std::time::Duration;

use server_common::{free_port, run_to_end, Server};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn printed(out: &server_common::Output) -> toml::Table {
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    out.stdout.parse::<toml::Table>().unwrap()
}

fn get<'a>(t: &'a toml::Table, section: &str, key: &str) -> &'a toml::Value {
    t.get(section)
        .and_then(|s| s.get(key))
        .unwrap_or_else(|| panic!("{section}.{key} missing"))
}

#[test]
fn flags_beat_variables_beat_the_file_beats_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "iolite.toml",
        "[limits]\nmax_connections = 100\nconnections_per_ip = 7\nmax_payload = 5000\n\
         [chat]\nhistory_page = 10\n[log]\nlevel = \"debug\"\n",
    );
    let out = run_to_end(
        dir.path(),
        &[
            "--config",
            &file,
            "--max-connections",
            "300",
            "--print-config",
        ],
        &[
            ("IOLITE_MAX_CONNECTIONS", "200"),
            ("IOLITE_CONNECTIONS_PER_IP", "8"),
            (
                "IOLITE_ALLOWED_ORIGINS",
                "https://a.example.com,https://*.b.example.com",
            ),
        ],
    );
    let t = printed(&out);
    // Flag over variable over file.
    assert_eq!(get(&t, "limits", "max_connections").as_integer(), Some(300));
    // Variable over file.
    assert_eq!(
        get(&t, "limits", "connections_per_ip").as_integer(),
        Some(8)
    );
    // File over default.
    assert_eq!(get(&t, "limits", "max_payload").as_integer(), Some(5000));
    assert_eq!(get(&t, "chat", "history_page").as_integer(), Some(10));
    assert_eq!(get(&t, "log", "level").as_str(), Some("debug"));
    // Defaults.
    assert_eq!(get(&t, "chat", "message_length").as_integer(), Some(2000));
    assert_eq!(get(&t, "listen", "port").as_integer(), Some(3000));
    assert_eq!(get(&t, "shutdown", "drain_seconds").as_integer(), Some(10));
    // Lists from a variable, comma-separated.
    assert_eq!(
        get(&t, "listen", "allowed_origins")
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_config_file_can_come_from_a_variable_and_secrets_are_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "[api]\nkey = \"file-key-0123456789\"\n[auth]\nsecret = \"file-secret\"\n",
    );
    let out = run_to_end(
        dir.path(),
        &["--print-config"],
        &[
            ("IOLITE_CONFIG", &file),
            ("IOLITE_API_KEY", "env-key-0123456789"),
        ],
    );
    let t = printed(&out);
    assert_eq!(get(&t, "api", "key").as_str(), Some("(hidden)"));
    assert_eq!(get(&t, "auth", "secret").as_str(), Some("(hidden)"));
    assert!(!out.stdout.contains("0123456789"), "{}", out.stdout);
    assert!(!out.stdout.contains("file-secret"), "{}", out.stdout);
}

#[tokio::test]
async fn the_server_listens_where_the_flag_says_over_variable_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (p_file, p_env, p_flag) = (free_port(), free_port(), free_port());
    let file = write(
        dir.path(),
        "c.toml",
        &format!("[listen]\nport = {p_file}\n"),
    );
    let dir = std::sync::Arc::new(dir);
    let port = p_flag.to_string();
    let env_port = p_env.to_string();
    let server = Server::start_in(
        dir.clone(),
        &["--config", &file, "--port", &port],
        &[("IOLITE_PORT", &env_port)],
    );
    assert_eq!(server.port(), p_flag);
    assert_eq!(server.get("/healthz").await.status, 200);
    drop(server);

    // Without the flag the variable wins.
    let server = Server::start_in(
        dir.clone(),
        &["--config", &file],
        &[("IOLITE_PORT", &env_port)],
    );
    assert_eq!(server.port(), p_env);
    drop(server);

    // Without either the file's port.
    let server = Server::start_in(
        dir.clone(),
        &["--config", &file],
        &[("IOLITE_PORT", &p_file.to_string())],
    );
    assert_eq!(server.port(), p_file);
}

#[test]
fn help_lists_the_flags_with_their_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_to_end(dir.path(), &["--help"], &[]);
    assert!(out.status.success());
    for needle in [
        "--config",
        "--port",
        "IOLITE_PORT",
        "--allowed-origins",
        "--tls-cert",
        "IOLITE_AUTH_SECRET",
        "--api-key",
        "--drain-seconds",
        "--log-format",
        "iolite.example.toml",
    ] {
        assert!(
            out.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            out.stdout
        );
    }
    // Secret values from the environment are not shown by --help.
    let out = run_to_end(
        dir.path(),
        &["--help"],
        &[("IOLITE_API_KEY", "do-not-show-me-0123")],
    );
    assert!(!out.stdout.contains("do-not-show-me"), "{}", out.stdout);
}

/// Runs with a refused configuration: exit status 2 and a message naming `needles`.
fn refused(args: &[&str], env: &[(&str, &str)], file: Option<&str>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if let Some(text) = file {
        let path = write(dir.path(), "bad.toml", text);
        args.push("--config".into());
        args.push(path);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_to_end(dir.path(), &args, env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} {env:?} {file:?}: {}",
        out.stderr
    );
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "{args:?} {env:?} {file:?}: stderr lacks {n:?}:\n{}",
            out.stderr
        );
    }
    // Nothing was started.
    assert!(!out.stdout.contains("listening on"));
    assert!(!dir.path().join("data").exists());
}

#[test]
fn unknown_keys_and_wrong_types_in_the_file_are_refused_by_name() {
    refused(
        &[],
        &[],
        Some("[limits]\nmax_conections = 5\n"),
        &["max_conections", "bad.toml"],
    );
    refused(&[], &[], Some("[listn]\nport = 1\n"), &["listn"]);
    refused(&[], &[], Some("[listen]\nport = \"eighty\"\n"), &["port"]);
    refused(&[], &[], Some("[listen]\nport = 70000\n"), &["port"]);
    refused(
        &[],
        &[],
        Some("[log]\nformat = \"xml\"\n"),
        &["format", "xml"],
    );
    refused(&[], &[], Some("this is not toml"), &["bad.toml"]);
}

#[test]
fn out_of_range_values_are_refused_by_name_whatever_their_source() {
    refused(
        &[],
        &[],
        Some("[limits]\nmax_connections = 0\n"),
        &[
            "limits.max_connections",
            "--max-connections",
            "IOLITE_MAX_CONNECTIONS",
        ],
    );
    refused(
        &["--connections-per-ip", "0"],
        &[],
        None,
        &["limits.connections_per_ip"],
    );
    refused(
        &[],
        &[("IOLITE_MAX_PAYLOAD", "0")],
        None,
        &["limits.max_payload"],
    );
    refused(&[], &[], Some("[tls]\ncert = \"cert.pem\"\n"), &["tls.key"]);
    refused(&["--tls-key", "key.pem"], &[], None, &["tls.cert"]);
    refused(
        &[],
        &[("IOLITE_API_KEY", "short")],
        None,
        &["api.key", "16"],
    );
    refused(
        &[],
        &[],
        Some("[listen]\nallowed_origins = [\"https://x.com/app\"]\n"),
        &["listen.allowed_origins"],
    );
    refused(
        &["--public-url", "chat.example.com"],
        &[],
        None,
        &["listen.public_url"],
    );
    refused(&["--log-level", "info,[[["], &[], None, &["log.level"]);
    refused(
        &[],
        &[],
        Some("[socketio]\nping_interval_ms = 0\n"),
        &["socketio.ping_interval_ms"],
    );
    refused(
        &[],
        &[],
        Some("[chat]\nmessage_length = 0\n"),
        &["chat.message_length"],
    );
    refused(&[], &[], Some("[store]\npath = \"\"\n"), &["store.path"]);
    refused(
        &["--store-path", "."],
        &[],
        None,
        &["store.path", "directory"],
    );
}

#[test]
fn bad_flag_and_variable_values_are_refused_naming_the_option() {
    refused(&["--port", "eighty"], &[], None, &["--port", "eighty"]);
    refused(&[], &[("IOLITE_PORT", "99999")], None, &["--port", "99999"]);
    refused(
        &[],
        &[("IOLITE_LOG_FORMAT", "xml")],
        None,
        &["--log-format", "xml"],
    );
    refused(&["--no-such-flag"], &[], None, &["--no-such-flag"]);
}

#[test]
fn a_missing_config_file_is_named() {
    refused(&["--config", "nowhere.toml"], &[], None, &["nowhere.toml"]);
}

#[test]
fn the_example_file_is_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../iolite.example.toml");
    let out = run_to_end(dir.path(), &["--config", example, "--print-config"], &[]);
    let t = printed(&out);
    assert_eq!(get(&t, "listen", "host").as_str(), Some("127.0.0.1"));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let server = Server::start(&["--log-format", "json"]);
    let log = server.log();
    let mut saw_listening = false;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
        if v["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening on"))
        {
            saw_listening = true;
            assert_eq!(v["tls"], serde_json::Value::Bool(false));
        }
    }
    assert!(saw_listening, "{log}");
    assert!(
        server.wait_log("guest mode", Duration::from_secs(5)).await,
        "{log}"
    );
}

#[tokio::test]
async fn text_logs_say_the_url_tls_and_guest_mode() {
    let server = Server::start(&[]);
    assert!(
        server
            .wait_log(
                "anyone who can reach this server can connect with any nickname",
                Duration::from_secs(5)
            )
            .await
    );
    assert!(
        server
            .wait_log("HTTP API off", Duration::from_secs(5))
            .await
    );
    let log = server.log();
    assert!(
        log.contains(&format!("listening on http://{}", server.addr)),
        "{log}"
    );
    assert!(log.contains("TLS off"), "{log}");
    assert!(log.contains("HTTP API off"), "{log}");
}
