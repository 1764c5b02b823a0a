//! "Acknowledged means fsynced", proved from the host's system calls: a kill keeps the page
//! cache, so no kill test can show it. The host runs under `strace` (installed by
//! `scripts/test`), and for every acknowledged request the trace must show the request read, then
//! an `fsync`/`fdatasync` of the log (`kaunter.db` or its WAL) completed, then the `202` written.

use crate::harness::*;

/// One system call from the trace: its line, whether it finished on that line, and its text.
struct Call {
    /// The line where the call finished (its `resumed` line if it was interrupted).
    done_at: usize,
    /// The line where the call began.
    began_at: usize,
    text: String,
}

/// Parses `strace -f -yy` output into calls, joining `<unfinished ...>` with `<... resumed>`.
fn calls(trace: &str) -> Vec<Call> {
    let mut open: std::collections::HashMap<String, (usize, String)> = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for (n, line) in trace.lines().enumerate() {
        let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            open.insert(pid.to_owned(), (n, head.to_owned()));
        } else if rest.starts_with("<... ") {
            if let Some((began_at, head)) = open.remove(pid) {
                let tail = rest.split_once(" resumed>").map_or("", |(_, t)| t);
                calls.push(Call {
                    done_at: n,
                    began_at,
                    text: format!("{head}{tail}"),
                });
            }
        } else {
            calls.push(Call {
                done_at: n,
                began_at: n,
                text: rest.to_owned(),
            });
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread")]
async fn every_202_is_written_after_the_log_is_fsynced() {
    let sink = Sink::start().await;
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("strace.txt");
    let mut host = Host::start_under(
        &config(&ConfigOptions::new(&sink.url)),
        &[
            "strace",
            "-f",
            "-yy",
            "-s",
            "65536",
            "-e",
            "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,fsync,fdatasync",
            "-o",
            trace.to_str().unwrap(),
        ],
    );
    let ids: Vec<String> = (0..20).map(|n| format!("fsync-probe-{n:02}")).collect();
    for id in &ids {
        let (status, body) = host.post_json(&sale(id, "hk-001", id, &[("1", 1, 100)])).await;
        assert_eq!(status, 202, "{body}");
    }
    // A batch of concurrent posts: group commits must hold the same order for each of them.
    let concurrent: Vec<String> = (0..10).map(|n| format!("fsync-group-{n:02}")).collect();
    let mut posts = tokio::task::JoinSet::new();
    for id in &concurrent {
        let request = host
            .http
            .post(format!("{}/v1/events", host.url))
            .bearer_auth(POS_KEY)
            .json(&sale(id, "hk-002", id, &[("1", 1, 100)]));
        posts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    assert!(host.terminate().success());
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls = calls(&text);
    let is_io = |c: &Call, names: &[&str]| names.iter().any(|n| c.text.starts_with(&format!("{n}(")));
    let syncs: Vec<usize> = calls
        .iter()
        .filter(|c| is_io(c, &["fsync", "fdatasync"]) && c.text.contains("kaunter.db") && c.text.ends_with("= 0"))
        .map(|c| c.done_at)
        .collect();
    assert!(!syncs.is_empty(), "no fsync of the log in the trace");
    for id in ids.iter().chain(&concurrent) {
        let needle = format!("\\\"id\\\":\\\"{id}\\\"");
        let request = calls
            .iter()
            .find(|c| {
                is_io(c, &["read", "readv", "recvfrom", "recvmsg"])
                    && c.text.contains("TCP")
                    && c.text.contains(id.as_str())
            })
            .unwrap_or_else(|| panic!("the request for {id} is not in the trace"));
        let response = calls
            .iter()
            .find(|c| {
                is_io(c, &["write", "writev", "sendto", "sendmsg"])
                    && c.text.contains("HTTP/1.1 202")
                    && c.text.contains(&needle)
            })
            .unwrap_or_else(|| panic!("the 202 for {id} is not in the trace"));
        assert!(
            syncs.iter().any(|at| request.done_at < *at && *at < response.began_at),
            "{id}: no fsync of the log between reading the request (line {}) and writing its 202 (line {})",
            request.done_at + 1,
            response.began_at + 1
        );
    }
}
