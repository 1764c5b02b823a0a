//! The scriptable HTTP sink the tests deliver to: answers, holds, and records every request it
//! gets on any method and path.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Upper case.
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Deliveries seen in flight together at a [`Sink`] holding each one.
#[derive(Debug, Clone, Default)]
pub struct Overlap {
    /// The most distinct partition keys in flight at one moment.
    pub most_keys_at_once: usize,
    /// Keys that had a second delivery arrive while one was in flight (order broken).
    pub same_key_at_once: Vec<String>,
}

/// A status and extra response headers.
type Answer = (u16, Vec<(String, String)>);
type Responder = Box<dyn Fn(&Value) -> Answer + Send + Sync>;

/// A scriptable webhook receiver on `POST /hooks`: answers the next scripted status (else asks
/// the responder, else 204). It records every request it gets, on any method and path (those
/// other than `POST /hooks` are answered 404), so a test can prove that nothing else arrived.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// How long each `POST /hooks` is held before its answer (zero: answered at once).
    hold: Arc<Mutex<Duration>>,
    /// Partition keys of the requests being held now, and what was seen of them.
    in_flight: Arc<Mutex<(Vec<String>, Overlap)>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    responder: Arc<Mutex<Option<Responder>>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink {
            url: format!("http://{addr}/hooks"),
            received: Arc::default(),
            hold: Arc::default(),
            in_flight: Arc::default(),
            script: Arc::default(),
            responder: Arc::default(),
        };
        let state = sink.clone();
        let (other_method, other_path) = (sink.clone(), sink.clone());
        let app = axum::Router::new()
            .route(
                "/hooks",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move { state.held(headers, body).await }
                })
                .fallback(move |request: axum::extract::Request| {
                    let sink = other_method.clone();
                    async move { sink.record_stray(request).await }
                }),
            )
            .fallback(move |request: axum::extract::Request| {
                let sink = other_path.clone();
                async move { sink.record_stray(request).await }
            });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sink
    }

    /// Answers after the hold, tracking which partition keys are in flight meanwhile.
    async fn held(&self, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> axum::response::Response {
        let hold = *self.hold.lock().unwrap();
        if hold.is_zero() {
            return self.handle(headers, body);
        }
        let key = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)["partitionkey"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        {
            let (keys, seen) = &mut *self.in_flight.lock().unwrap();
            if keys.contains(&key) {
                seen.same_key_at_once.push(key.clone());
            }
            keys.push(key.clone());
            let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
            seen.most_keys_at_once = seen.most_keys_at_once.max(distinct.len());
        }
        tokio::time::sleep(hold).await;
        let response = self.handle(headers, body);
        let (keys, _) = &mut *self.in_flight.lock().unwrap();
        if let Some(at) = keys.iter().position(|k| *k == key) {
            keys.remove(at);
        }
        response
    }

    /// Holds every webhook delivery for `hold` before answering, so that deliveries in flight
    /// together can be seen (see [`Sink::overlap`]).
    pub fn hold_each(&self, hold: Duration) {
        *self.hold.lock().unwrap() = hold;
    }

    /// What was in flight together while deliveries were held.
    pub fn overlap(&self) -> Overlap {
        self.in_flight.lock().unwrap().1.clone()
    }

    fn handle(&self, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let scripted = self.script.lock().unwrap().pop_front();
        let (status, extra) = match scripted {
            Some(s) => s,
            None => match self.responder.lock().unwrap().as_ref() {
                Some(f) => f(&value),
                None => (204, vec![]),
            },
        };
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        self.received.lock().unwrap().push(Received {
            method: "POST".into(),
            path: "/hooks".into(),
            headers,
            body: body.to_vec(),
            status,
            at: Instant::now(),
        });
        let mut response = (axum::http::StatusCode::from_u16(status).unwrap(), "sink says so").into_response();
        for (k, v) in extra {
            response.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        response
    }

    /// Records a request to anything but `POST /hooks` and answers 404.
    async fn record_stray(&self, request: axum::extract::Request) -> axum::http::StatusCode {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        self.received.lock().unwrap().push(Received {
            method: parts.method.to_string(),
            path: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body,
            status: 404,
            at: Instant::now(),
        });
        axum::http::StatusCode::NOT_FOUND
    }

    /// Queues statuses for the next requests.
    pub fn script(&self, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .extend(statuses.iter().map(|s| (*s, vec![])));
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Drops the statuses still queued: the sink answers 204 again.
    pub fn clear_script(&self) {
        self.script.lock().unwrap().clear();
    }

    /// Queues one status with headers.
    pub fn script_with(&self, status: u16, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.script.lock().unwrap().push_back((status, headers));
    }

    /// Decides unscripted answers from the request body.
    pub fn respond_with(&self, f: impl Fn(&Value) -> (u16, Vec<(String, String)>) + Send + Sync + 'static) {
        *self.responder.lock().unwrap() = Some(Box::new(f));
    }

    /// Drops the responder: unscripted requests get 204 again.
    pub fn clear_responder(&self) {
        *self.responder.lock().unwrap() = None;
    }

    /// The webhook deliveries (`POST /hooks`) received, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/hooks")
            .cloned()
            .collect()
    }

    /// How many webhook deliveries (`POST /hooks`) arrived, without copying them.
    pub fn delivery_count(&self) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/hooks")
            .count()
    }

    /// Every request received, on any method and path, in order.
    pub fn all_requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests for one event id, in arrival order.
    pub fn requests_for(&self, event_id: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.json()["id"] == event_id)
            .collect()
    }

    /// Event ids the sink accepted (2xx), in order.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.json()["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}
