//! HTTP connections with limits a hostile or broken client cannot outlast.
//!
//! [`serve`] accepts connections and runs each through hyper's HTTP/1 server with the API router.
//! Every connection is watched:
//! - a request head must arrive within `header_read_timeout_secs` of its first byte;
//! - a body must keep up `body_min_bytes_per_sec` after a grace of `body_read_timeout_secs`
//!   (a body trickled at a few bytes a second is cut off, with a 408);
//! - a keep-alive connection idle for `keep_alive_idle_secs` is closed;
//! - at most `max_connections` are open; at the limit, the longest-idle keep-alive connection is
//!   closed to admit the new one, so idle sockets can never lock fresh clients out. Only when
//!   every connection is busy does accepting wait for one to finish.
//!
//! This module owns connection lifetimes only; what a request means is the router's business.

use crate::config::ServerConfig;
use crate::ingress::BodyTooSlow;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The limits of [`serve`], from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Longest time from a request's first byte to its complete head.
    pub header_read: Duration,
    /// Grace before a body must keep up its minimum rate.
    pub body_grace: Duration,
    /// Slowest acceptable average body rate after the grace.
    pub body_min_bytes_per_sec: u64,
    /// Longest a keep-alive connection may wait for its next request.
    pub keep_alive_idle: Duration,
    /// Most open connections.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits configured in `[server]`.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            header_read: Duration::from_secs(server.header_read_timeout_secs),
            body_grace: Duration::from_secs(server.body_read_timeout_secs),
            body_min_bytes_per_sec: server.body_min_bytes_per_sec,
            keep_alive_idle: Duration::from_secs(server.keep_alive_idle_secs),
            max_connections: server.max_connections,
        }
    }
}

/// What the watchdog of one connection knows about it. Times are milliseconds since `base`.
struct ConnState {
    base: Instant,
    /// Requests being served (their handler has not answered yet).
    in_flight: AtomicUsize,
    /// When the connection last became idle (no request in flight).
    idle_since_ms: AtomicU64,
    /// When the first byte of the next request head arrived (0: none yet).
    head_started_ms: AtomicU64,
    /// Woken when the state above changes, so the watchdog picks the right deadline.
    changed: Notify,
    /// Woken to close the connection (evicted at the limit).
    close: Notify,
}

impl ConnState {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            changed: Notify::new(),
            close: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// Idle: nothing in flight and no request head begun.
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.head_started_ms.load(Ordering::Acquire) == 0
    }

    /// When this connection must be closed if nothing changes, and why.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            0 => Some((
                self.at(self.idle_since_ms.load(Ordering::Acquire)) + limits.keep_alive_idle,
                "idle keep-alive connection closed (server.keep_alive_idle_secs)",
            )),
            // Stored +1 so that a head starting at 0 ms is not "none".
            started => Some((
                self.at(started - 1) + limits.header_read,
                "request head not complete in time (server.header_read_timeout_secs)",
            )),
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(0, Ordering::Release);
        self.changed.notify_one();
    }

    fn request_answered(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        }
        self.changed.notify_one();
    }

    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_started_ms.load(Ordering::Acquire) == 0 {
            self.head_started_ms.store(self.now_ms() + 1, Ordering::Release);
            self.changed.notify_one();
        }
    }
}

/// The open connections, for the limit and eviction.
#[derive(Default)]
struct Open {
    connections: Mutex<HashMap<u64, Arc<ConnState>>>,
    freed: Notify,
}

impl Open {
    fn len(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn insert(&self, id: u64, state: Arc<ConnState>) {
        if let Ok(mut c) = self.connections.lock() {
            c.insert(id, state);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut c) = self.connections.lock()
            && c.remove(&id).is_some()
        {
            self.freed.notify_one();
        }
    }

    /// Closes the connection idle the longest, if any is idle; whether one was.
    fn evict_longest_idle(&self) -> bool {
        let Ok(mut c) = self.connections.lock() else {
            return false;
        };
        let oldest = c
            .iter()
            .filter(|(_, s)| s.is_idle())
            .min_by_key(|(_, s)| s.at(s.idle_since_ms.load(Ordering::Acquire)))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| c.remove(&id)) {
            Some(state) => {
                state.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` with `limits` until the listener fails.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnLimits) -> std::io::Result<()> {
    let open = Arc::new(Open::default());
    let mut next_id = 0u64;
    loop {
        while open.len() >= limits.max_connections {
            if open.evict_longest_idle() {
                tracing::debug!(
                    max = limits.max_connections,
                    "connection limit reached: closed the longest-idle keep-alive connection"
                );
                continue;
            }
            // Every connection is busy: wait for one to finish (new clients queue in the backlog).
            let freed = open.freed.notified();
            if open.len() < limits.max_connections {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
        }
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let state = Arc::new(ConnState::new());
        open.insert(id, state.clone());
        let (open, app) = (open.clone(), app.clone());
        tokio::spawn(async move {
            connection(stream, app, state, limits).await;
            tracing::trace!(%peer, "connection closed");
            open.remove(id);
        });
    }
}

/// Runs one connection until it ends, times out or is evicted.
async fn connection(stream: TcpStream, app: Router, state: Arc<ConnState>, limits: ConnLimits) {
    let io = TokioIo::new(Watched {
        inner: stream,
        state: state.clone(),
    });
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let state = service_state.clone();
        let mut app = app.clone();
        state.request_started();
        let request = request.map(|body| Body::new(MinRate::new(body, limits)));
        async move {
            let answer = tower_service::Service::call(&mut app, request).await;
            state.request_answered();
            answer
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    loop {
        let changed = state.changed.notified();
        let deadline = state.deadline(&limits);
        let sleep = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut conn => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = state.close.notified() => return,
            () = changed => {}
            () = sleep => {
                if let Some((at, why)) = state.deadline(&limits)
                    && at <= Instant::now()
                {
                    tracing::debug!(reason = why, "closing a connection");
                    return;
                }
            }
        }
    }
}

/// The TCP stream, telling the watchdog when a request head starts arriving.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must arrive at a minimum average rate after a grace period: by `grace +
/// bytes / min_rate` after the request began, at least `bytes` must have come in.
struct MinRate {
    inner: hyper::body::Incoming,
    started: Instant,
    received: u64,
    limits: ConnLimits,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl MinRate {
    fn new(inner: hyper::body::Incoming, limits: ConnLimits) -> Self {
        Self {
            inner,
            started: Instant::now(),
            received: 0,
            limits,
            timer: None,
        }
    }

    /// When the next byte must have arrived by.
    fn due(&self) -> Instant {
        let rate = self.limits.body_min_bytes_per_sec.max(1);
        self.started + self.limits.body_grace + Duration::from_millis((self.received + 1).saturating_mul(1000) / rate)
    }
}

impl http_body::Body for MinRate {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                }
                self.timer = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let due = self.due();
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let rate = self.limits.body_min_bytes_per_sec;
                        Poll::Ready(Some(Err(Box::new(BodyTooSlow(rate)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
