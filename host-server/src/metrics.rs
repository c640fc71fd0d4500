//! Prometheus metrics and the health check, served on `--metrics ADDR` (off by default).
//!
//! [`Metrics`] is `None` inside unless `--metrics` is given, so a server without it pays one
//! branch per instrumented place. Each place is one call: connection admitted, logged in,
//! closed; login result; registration; message stored; delivery queued; slow reader cut;
//! store commit timed (in the SQLite writer); bus event in or out.
//!
//! The listener is hyper 1 over smol (`smol-hyper`'s I/O and timer adapters) on the server's
//! executor: `GET /metrics` (OpenMetrics text, which Prometheus scrapes), `GET /healthz` (200
//! when the store answers within 2 s, 503 otherwise), 404 for anything else.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use smol::Async;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::store::Store;

type Label = [(&'static str, &'static str); 1];

/// A login's outcome, the `result` label of `chatbox_logins_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in.
    Ok,
    /// Refused (wrong credentials, locked, throttled, …).
    Failed,
    /// The password hashing queue was full.
    Busy,
}

/// Direction of a bus event, the `direction` label of `chatbox_bus_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the bus.
    In,
    /// Published to the bus.
    Out,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    // Each labelled series is held directly: one atomic add per event, no family lookup.
    anonymous: Gauge,
    authenticated: Gauge,
    login_ok: Counter,
    login_failed: Counter,
    login_busy: Counter,
    registrations: Counter,
    messages: Counter,
    deliveries: Counter,
    slow_readers: Counter,
    commit: Histogram,
    message_store: Histogram,
    bus_in: Counter,
    bus_out: Counter,
}

/// The server's metrics; a no-op when metrics are off.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

const ANON: Label = [("state", "anonymous")];
const AUTH: Label = [("state", "authenticated")];

impl Metrics {
    /// Metrics off: every call does nothing.
    #[must_use]
    pub fn off() -> Metrics {
        Metrics(None)
    }

    /// Metrics on; `cluster` adds `chatbox_bus_events_total`.
    #[must_use]
    pub fn new(cluster: bool) -> Metrics {
        let mut registry = Registry::default();
        let connections = Family::<Label, Gauge>::default();
        let logins = Family::<Label, Counter>::default();
        let bus = Family::<Label, Counter>::default();
        // Every label value shows from the start, at 0.
        let anonymous = connections.get_or_create(&ANON).clone();
        let authenticated = connections.get_or_create(&AUTH).clone();
        let login = |r| logins.get_or_create(&[("result", r)]).clone();
        let (login_ok, login_failed, login_busy) = (login("ok"), login("failed"), login("busy"));
        let bus_in = bus.get_or_create(&[("direction", "in")]).clone();
        let bus_out = bus.get_or_create(&[("direction", "out")]).clone();
        let registrations = Counter::default();
        let messages = Counter::default();
        let deliveries = Counter::default();
        let slow_readers = Counter::default();
        // 0.1 ms … ~1.6 s.
        let commit = Histogram::new(exponential_buckets(0.000_1, 2.0, 15));
        let message_store = Histogram::new(exponential_buckets(0.000_1, 2.0, 15));
        registry.register(
            "chatbox_connections",
            "Open connections by state",
            connections.clone(),
        );
        registry.register("chatbox_logins", "Login attempts by result", logins.clone());
        registry.register(
            "chatbox_registrations",
            "Registrations completed",
            registrations.clone(),
        );
        registry.register("chatbox_messages", "Chat messages stored", messages.clone());
        registry.register(
            "chatbox_deliveries",
            "Records queued to connections",
            deliveries.clone(),
        );
        registry.register(
            "chatbox_slow_reader_disconnects",
            "Connections cut off for not reading",
            slow_readers.clone(),
        );
        registry.register(
            "chatbox_store_commit_seconds",
            "Time of one SQLite writer transaction (BEGIN to COMMIT)",
            commit.clone(),
        );
        registry.register(
            "chatbox_message_store_seconds",
            "Time a chat message waited for its store (queue, transaction, commit) before its fan-out",
            message_store.clone(),
        );
        if cluster {
            registry.register(
                "chatbox_bus_events",
                "Cluster bus events by direction",
                bus.clone(),
            );
        }
        Metrics(Some(Arc::new(Inner {
            registry,
            anonymous,
            authenticated,
            login_ok,
            login_failed,
            login_busy,
            registrations,
            messages,
            deliveries,
            slow_readers,
            commit,
            message_store,
            bus_in,
            bus_out,
        })))
    }

    /// Whether metrics are on.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// A connection was admitted (anonymous).
    pub fn conn_opened(&self) {
        if let Some(m) = &self.0 {
            m.anonymous.inc();
        }
    }

    /// A connection logged in.
    pub fn conn_authenticated(&self) {
        if let Some(m) = &self.0 {
            m.anonymous.dec();
            m.authenticated.inc();
        }
    }

    /// A connection closed.
    pub fn conn_closed(&self, authenticated: bool) {
        if let Some(m) = &self.0 {
            if authenticated {
                m.authenticated.dec();
            } else {
                m.anonymous.dec();
            }
        }
    }

    /// A login attempt's result.
    pub fn login(&self, r: LoginResult) {
        if let Some(m) = &self.0 {
            match r {
                LoginResult::Ok => m.login_ok.inc(),
                LoginResult::Failed => m.login_failed.inc(),
                LoginResult::Busy => m.login_busy.inc(),
            };
        }
    }

    /// A registration was confirmed.
    pub fn registration(&self) {
        if let Some(m) = &self.0 {
            m.registrations.inc();
        }
    }

    /// A chat message was stored.
    pub fn message(&self) {
        if let Some(m) = &self.0 {
            m.messages.inc();
        }
    }

    /// A record was queued to a connection.
    pub fn delivery(&self) {
        if let Some(m) = &self.0 {
            m.deliveries.inc();
        }
    }

    /// A slow reader was cut off.
    pub fn slow_reader(&self) {
        if let Some(m) = &self.0 {
            m.slow_readers.inc();
        }
    }

    /// One store transaction took `d`.
    pub fn commit(&self, d: Duration) {
        if let Some(m) = &self.0 {
            m.commit.observe(d.as_secs_f64());
        }
    }

    /// When a chat message's store begins, if metrics are on (see [`Metrics::message_stored`]).
    #[must_use]
    pub fn store_began(&self) -> Option<std::time::Instant> {
        self.0.as_ref().map(|_| std::time::Instant::now())
    }

    /// A chat message's store, begun at `began`, answered: how long its fan-out waited for
    /// the database (on SQLite: the writer's queue, the batch and the commit).
    pub fn message_stored(&self, began: Option<std::time::Instant>) {
        if let (Some(m), Some(t0)) = (&self.0, began) {
            m.message_store.observe(t0.elapsed().as_secs_f64());
        }
    }

    /// A bus event.
    pub fn bus(&self, d: Direction) {
        if let Some(m) = &self.0 {
            match d {
                Direction::In => m.bus_in.inc(),
                Direction::Out => m.bus_out.inc(),
            };
        }
    }

    /// The exposition text (empty when off).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.0
            && prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err()
        {
            out.clear();
        }
        out
    }
}

/// Most metrics connections served at once; more are closed at once.
const MAX_CONNS: usize = 16;

/// Binds the metrics listener (before anything else starts, so a port in use stops the start).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<Async<std::net::TcpListener>> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "--metrics: cannot listen on {addr} (port {}): {e}",
                addr.port()
            ),
        )
    })?;
    Async::new(l)
}

/// What the endpoint answers from.
struct Endpoint {
    store: Arc<Store>,
    metrics: Metrics,
}

/// Serves `/metrics` (from `metrics`) and `/healthz` (whether `store` answers) until the
/// executor stops or `stopping` says shutdown has begun.
pub(crate) async fn serve(
    store: Arc<Store>,
    metrics: Metrics,
    stopping: impl Fn() -> bool,
    listener: Async<std::net::TcpListener>,
    ex: std::sync::Weak<smol::Executor<'static>>,
) {
    let shared = Arc::new(Endpoint { store, metrics });
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            smol::Timer::after(Duration::from_millis(50)).await;
            continue;
        };
        if stopping() {
            return;
        }
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNS {
            open.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let Some(ex) = ex.upgrade() else { return };
        let (shared, open) = (shared.clone(), open.clone());
        ex.spawn(async move {
            let service = hyper::service::service_fn(|req| {
                let shared = shared.clone();
                async move { Ok::<_, core::convert::Infallible>(answer(&shared, &req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(SmolTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true)
                .serve_connection(FuturesIo::new(stream), service);
            // A client that stays longer than a minute is dropped.
            let _ = smol::future::or(async { conn.await.map_err(|_| ()) }, async {
                smol::Timer::after(Duration::from_secs(60)).await;
                Err(())
            })
            .await;
            open.fetch_sub(1, Ordering::SeqCst);
        })
        .detach();
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn answer(shared: &Endpoint, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.encode(),
        ),
        "/healthz" => {
            let ok = smol::future::or(async { shared.store.ping().await.is_ok() }, async {
                smol::Timer::after(Duration::from_secs(2)).await;
                false
            })
            .await;
            if ok {
                text(StatusCode::OK, PLAIN, "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    PLAIN,
                    "store not answering\n".into(),
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n".into()),
    }
}
