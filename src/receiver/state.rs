//! What both listeners share: the script of replies, the counts, and what
//! the receiver remembers of the requests it decoded.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::watch;

use super::{ReceivedCounts, Receiver, ReceiverCounts, Reply};
use crate::otlp::{AnyValue, KeyValue, Resource};
use crate::pb::collector::logs::v1 as logs_svc;
use crate::pb::collector::metrics::v1 as metrics_svc;
use crate::pb::collector::trace::v1 as trace_svc;
use crate::pb::metrics::v1::metric::Data;
use crate::Signal;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Grpc,
    Http,
}

#[derive(Debug)]
struct Script {
    queues: [VecDeque<Reply>; 3],
    defaults: [Reply; 3],
}

impl Script {
    fn next(&mut self, signal: Signal) -> Reply {
        let i = signal.index();
        self.queues[i].pop_front().unwrap_or_else(|| self.defaults[i].clone())
    }
}

#[derive(Debug)]
pub(super) struct State {
    script: Mutex<Script>,
    pub(super) counts: watch::Sender<ReceiverCounts>,
    /// The metadata (gRPC) or headers (HTTP) of the latest request, name
    /// (lowercase) and value.
    last_metadata: Mutex<Vec<(String, String)>>,
    /// Resources and scopes seen, per signal.
    seen: Mutex<[Seen; 3]>,
    /// Whether to keep the requests in `recorded`.
    record: bool,
    /// Every request received, re-encoded, per signal (by `index`).
    recorded: Mutex<[Vec<Vec<u8>>; 3]>,
    /// When each of the first [`Receiver::MAX_ARRIVALS`] decoded requests of
    /// each signal arrived.
    arrivals: Mutex<[Vec<Instant>; 3]>,
}

impl State {
    pub(super) fn new(record: bool) -> Self {
        Self {
            script: Mutex::new(Script { queues: Default::default(), defaults: [Reply::Ok, Reply::Ok, Reply::Ok] }),
            counts: watch::Sender::new(ReceiverCounts::default()),
            last_metadata: Mutex::new(Vec::new()),
            seen: Mutex::new(Default::default()),
            record,
            recorded: Mutex::default(),
            arrivals: Mutex::default(),
        }
    }

    pub(super) fn script(&self, signal: Signal, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("receiver lock").queues[signal.index()].extend(replies);
    }

    pub(super) fn set_default(&self, signal: Signal, reply: Reply) {
        self.script.lock().expect("receiver lock").defaults[signal.index()] = reply;
    }

    pub(super) fn last_header(&self, name: &str) -> Option<String> {
        let metadata = self.last_metadata.lock().expect("receiver lock");
        metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    pub(super) fn resources(&self, signal: Signal) -> Vec<Resource> {
        self.seen.lock().expect("receiver lock")[signal.index()].resources.clone()
    }

    pub(super) fn scope_names(&self, signal: Signal) -> Vec<String> {
        self.seen.lock().expect("receiver lock")[signal.index()].scopes.clone()
    }

    pub(super) fn recorded(&self, signal: Signal) -> Vec<Vec<u8>> {
        self.recorded.lock().expect("receiver lock")[signal.index()].clone()
    }

    pub(super) fn arrivals(&self, signal: Signal) -> Vec<Instant> {
        self.arrivals.lock().expect("receiver lock")[signal.index()].clone()
    }

    pub(super) fn count(&self, signal: Signal, update: impl FnOnce(&mut ReceivedCounts)) {
        self.counts.send_modify(|c| update(c.signal_mut(signal)));
    }

    /// Remembers a decoded request (its headers, resources, scopes, arrival
    /// and, when recording, its bytes), counts it, and answers it as
    /// scripted. The reply returned is final: never `Delayed`, and never
    /// `Hang` (a hung request's future never completes).
    pub(super) async fn receive<R: Export>(&self, request: &R, headers: Vec<(String, String)>, via: Via) -> Reply {
        let arrived = Instant::now();
        *self.last_metadata.lock().expect("receiver lock") = headers;
        request.remember(&mut self.seen.lock().expect("receiver lock")[R::SIGNAL.index()]);
        if self.record {
            self.recorded.lock().expect("receiver lock")[R::SIGNAL.index()].push(request.encode_to_vec());
        }
        {
            let mut arrivals = self.arrivals.lock().expect("receiver lock");
            let arrivals = &mut arrivals[R::SIGNAL.index()];
            if arrivals.len() < Receiver::MAX_ARRIVALS {
                arrivals.push(arrived);
            }
        }
        self.answer(R::SIGNAL, request.items(), request.encoded_len(), via).await
    }

    /// Counts the request, then answers it as scripted.
    async fn answer(&self, signal: Signal, items: u64, bytes: usize, via: Via) -> Reply {
        self.count(signal, |c| {
            c.requests += 1;
            c.http_requests += u64::from(via == Via::Http);
            c.received += items;
            c.bytes += bytes as u64;
            c.concurrent += 1;
            c.max_concurrent = c.max_concurrent.max(c.concurrent);
        });
        // Lowers `concurrent` however the answer ends, even if the client
        // gives up and the server drops this future.
        struct Answering<'a>(&'a State, Signal);
        impl Drop for Answering<'_> {
            fn drop(&mut self) {
                self.0.count(self.1, |c| c.concurrent -= 1);
            }
        }
        let _answering = Answering(self, signal);
        let mut reply = self.script.lock().expect("receiver lock").next(signal);
        loop {
            match reply {
                Reply::Delayed { delay, then } => {
                    tokio::time::sleep(delay).await;
                    reply = *then;
                }
                Reply::Hang => {
                    // Counted as failed now: the client will give up on it.
                    self.count(signal, |c| c.failed += items);
                    return std::future::pending().await;
                }
                Reply::Ok => {
                    self.count(signal, |c| c.acked += items);
                    return Reply::Ok;
                }
                Reply::Http(http) if http.is_success() => {
                    self.count(signal, |c| c.acked += items);
                    return Reply::Http(http);
                }
                Reply::PartialSuccess { rejected, message } => {
                    let refused = (rejected.max(0) as u64).min(items);
                    self.count(signal, |c| {
                        c.acked += items - refused;
                        c.rejected += refused;
                    });
                    return Reply::PartialSuccess { rejected, message };
                }
                failure
                @ (Reply::Status { .. } | Reply::Throttle { .. } | Reply::Http(_) | Reply::CloseMidResponse) => {
                    self.count(signal, |c| c.failed += items);
                    return failure;
                }
            }
        }
    }
}

/// The distinct resources and scope names one signal's requests carried.
#[derive(Debug, Default)]
pub(super) struct Seen {
    resources: Vec<Resource>,
    scopes: Vec<String>,
}

impl Seen {
    fn add<'a>(
        &mut self,
        resource: Option<&crate::pb::resource::v1::Resource>,
        scopes: impl Iterator<Item = Option<&'a crate::pb::common::v1::InstrumentationScope>>,
    ) {
        let resource = resource_from_pb(resource);
        if self.resources.len() < Receiver::MAX_REMEMBERED && !self.resources.contains(&resource) {
            self.resources.push(resource);
        }
        for scope in scopes.map(|s| s.map(|s| s.name.clone()).unwrap_or_default()) {
            if self.scopes.len() < Receiver::MAX_REMEMBERED && !self.scopes.contains(&scope) {
                self.scopes.push(scope);
            }
        }
    }
}

fn resource_from_pb(resource: Option<&crate::pb::resource::v1::Resource>) -> Resource {
    let Some(resource) = resource else { return Resource::default() };
    Resource::new(resource.attributes.iter().map(key_value_from_pb))
        .with_dropped_attributes_count(resource.dropped_attributes_count)
}

fn key_value_from_pb(kv: &crate::pb::common::v1::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.clone(),
        value: kv.value.as_ref().map_or(AnyValue::String(String::new()), any_value_from_pb),
    }
}

fn any_value_from_pb(value: &crate::pb::common::v1::AnyValue) -> AnyValue {
    use crate::pb::common::v1::any_value::Value;
    match &value.value {
        Some(Value::StringValue(s)) => AnyValue::String(s.clone()),
        Some(Value::BoolValue(b)) => AnyValue::Bool(*b),
        Some(Value::IntValue(i)) => AnyValue::Int(*i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(*d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b.clone()),
        Some(Value::ArrayValue(a)) => AnyValue::Array(a.values.iter().map(any_value_from_pb).collect()),
        Some(Value::KvlistValue(kv)) => AnyValue::Map(kv.values.iter().map(key_value_from_pb).collect()),
        None => AnyValue::String(String::new()),
    }
}

/// One signal's export request, as both listeners need it: which signal it
/// is, how many items it holds, what to remember of it, and its response.
pub(super) trait Export: prost::Message + Default + Send + Sync + 'static {
    /// The signal of this request type.
    const SIGNAL: Signal;
    /// The matching `Export*ServiceResponse`.
    type Response: prost::Message + Default + Send + 'static;

    /// Data points, spans or log records.
    fn items(&self) -> u64;

    /// Adds its resources and scope names to `seen`.
    fn remember(&self, seen: &mut Seen);

    /// The response: OK, or with a partial success of `rejected` items and `message`.
    fn response(partial: Option<(i64, String)>) -> Self::Response;
}

impl Export for metrics_svc::ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    type Response = metrics_svc::ExportMetricsServiceResponse;

    fn items(&self) -> u64 {
        let points = |data: &Option<Data>| match data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        };
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| points(&m.data) as u64)
            .sum()
    }

    fn remember(&self, seen: &mut Seen) {
        for rm in &self.resource_metrics {
            seen.add(rm.resource.as_ref(), rm.scope_metrics.iter().map(|s| s.scope.as_ref()));
        }
    }

    fn response(partial: Option<(i64, String)>) -> Self::Response {
        metrics_svc::ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected_data_points, error_message)| {
                metrics_svc::ExportMetricsPartialSuccess { rejected_data_points, error_message }
            }),
        }
    }
}

impl Export for trace_svc::ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;
    type Response = trace_svc::ExportTraceServiceResponse;

    fn items(&self) -> u64 {
        self.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
    }

    fn remember(&self, seen: &mut Seen) {
        for rs in &self.resource_spans {
            seen.add(rs.resource.as_ref(), rs.scope_spans.iter().map(|s| s.scope.as_ref()));
        }
    }

    fn response(partial: Option<(i64, String)>) -> Self::Response {
        trace_svc::ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected_spans, error_message)| trace_svc::ExportTracePartialSuccess {
                rejected_spans,
                error_message,
            }),
        }
    }
}

impl Export for logs_svc::ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    type Response = logs_svc::ExportLogsServiceResponse;

    fn items(&self) -> u64 {
        self.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
    }

    fn remember(&self, seen: &mut Seen) {
        for rl in &self.resource_logs {
            seen.add(rl.resource.as_ref(), rl.scope_logs.iter().map(|s| s.scope.as_ref()));
        }
    }

    fn response(partial: Option<(i64, String)>) -> Self::Response {
        logs_svc::ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected_log_records, error_message)| logs_svc::ExportLogsPartialSuccess {
                rejected_log_records,
                error_message,
            }),
        }
    }
}
