//! The bound on request bytes in flight, across every call and connection.
//!
//! tonic decodes a whole message before the service sees it, up to the
//! decoding limit (64 MiB), on every stream of every connection: 128
//! streams of one client could hold 8 GiB. Here each call reserves its
//! message's size from one node-wide budget before its body is read, and
//! holds it until its answer is built (or its body and call are dropped).
//! The size comes from the gRPC frame header (a flag byte and a 4-byte
//! length) at the front of the body, so a call reserves all it needs at
//! once: no call holds part of the budget while it waits for the rest,
//! and calls cannot deadlock each other. A call waits its turn (FIFO) for
//! the budget, within its deadline; HTTP/2 flow control keeps the unread
//! body on the client meanwhile. A message larger than the whole budget
//! reserves the whole budget, and so runs alone; one declared larger than
//! tonic's decoding limit (64 MiB) reserves nothing, since tonic refuses
//! it unread.
//!
//! Known limits: the reservation is taken before the call's token is
//! checked (that happens on the decoded message), so unauthenticated
//! streams that send a header and stall hold budget until their deadline;
//! and the budget is one FIFO for every tenant, held while a call waits in
//! its tenant's admission queue, so a tenant's burst of large upserts can
//! make other tenants' calls wait for bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default budget of request bytes in flight.
pub const DEFAULT_REQUEST_BYTES_IN_FLIGHT: usize = 512 << 20;

/// The gRPC message prefix: a compression flag and a big-endian length.
const GRPC_HEADER: usize = 5;

/// The node's budget of request bytes in flight.
#[derive(Debug)]
pub struct InflightBudget {
    bytes: usize,
    permits: Arc<Semaphore>,
    /// Bytes declared by the calls that hold a reservation now, and the
    /// most there ever were (what a test checks).
    reading: AtomicUsize,
    peak: AtomicUsize,
}

impl InflightBudget {
    pub fn new(bytes: usize) -> Arc<Self> {
        // One reservation is at most the whole budget, and a reservation
        // counts in u32.
        let bytes = bytes.clamp(1, u32::MAX as usize);
        Arc::new(InflightBudget {
            bytes,
            permits: Arc::new(Semaphore::new(bytes)),
            reading: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// The most request bytes that were ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The tower layer that makes each call reserve its bytes.
    pub fn layer(self: &Arc<Self>) -> InflightLayer {
        InflightLayer {
            budget: Arc::clone(self),
        }
    }
}

/// One call's reservation: released when both its body and its call are
/// gone. `bytes` is what the call declared (its permits are as many, or
/// the whole budget when it declared more).
struct Reservation {
    budget: Arc<InflightBudget>,
    bytes: usize,
    _permit: OwnedSemaphorePermit,
}

impl Reservation {
    fn new(budget: Arc<InflightBudget>, permit: OwnedSemaphorePermit, bytes: usize) -> Self {
        let now = budget.reading.fetch_add(bytes, Ordering::AcqRel) + bytes;
        budget.peak.fetch_max(now, Ordering::AcqRel);
        Reservation {
            budget,
            bytes,
            _permit: permit,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reading.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

type Slot = Arc<Mutex<Option<Reservation>>>;

#[derive(Debug, Clone)]
pub struct InflightLayer {
    budget: Arc<InflightBudget>,
}

impl<S> tower::Layer<S> for InflightLayer {
    type Service = Inflight<S>;

    fn layer(&self, inner: S) -> Inflight<S> {
        Inflight {
            inner,
            budget: Arc::clone(&self.budget),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Inflight<S> {
    inner: S,
    budget: Arc<InflightBudget>,
}

impl<S, B> tower::Service<http::Request<B>> for Inflight<S>
where
    S: tower::Service<http::Request<ReservingBody<B>>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let slot: Slot = Arc::new(Mutex::new(None));
        let budget = Arc::clone(&self.budget);
        let call_slot = Arc::clone(&slot);
        let request = request.map(|body| ReservingBody {
            inner: body,
            budget,
            slot,
            state: State::Header(BytesMut::new()),
        });
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(call_slot);
            answer
        })
    }
}

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

enum State {
    /// Reading the message's frame header.
    Header(BytesMut),
    /// Waiting for the budget, holding what was read and the bytes the
    /// message declared.
    Reserving(Acquire, Bytes, usize),
    /// Reserved (or nothing to reserve): the body as it comes.
    Passing,
}

pin_project_lite::pin_project! {
    /// A request body that yields nothing until its call has reserved its
    /// message's bytes.
    pub struct ReservingBody<B> {
        #[pin]
        inner: B,
        budget: Arc<InflightBudget>,
        slot: Slot,
        state: State,
    }
}

impl<B> Body for ReservingBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            match this.state {
                State::Passing => return this.inner.as_mut().poll_frame(cx),
                State::Header(read) => {
                    if read.len() >= GRPC_HEADER {
                        let declared =
                            u32::from_be_bytes([read[1], read[2], read[3], read[4]]) as usize;
                        let declared = GRPC_HEADER + declared;
                        let held = std::mem::take(read).freeze();
                        // tonic refuses a message over its decoding limit
                        // before buffering it: nothing to reserve, and a
                        // caller declaring 4 GiB takes no budget.
                        if declared > GRPC_HEADER + crate::api::MAX_MESSAGE_BYTES {
                            *this.state = State::Passing;
                            return Poll::Ready(Some(Ok(Frame::data(held))));
                        }
                        let bytes = declared.min(this.budget.bytes);
                        let permits = Arc::clone(&this.budget.permits);
                        let acquire: Acquire =
                            Box::pin(async move { permits.acquire_many_owned(bytes as u32).await });
                        *this.state = State::Reserving(acquire, held, declared);
                        continue;
                    }
                    match ready!(this.inner.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => read.extend_from_slice(&data),
                            // Trailers before a whole header: no message
                            // to reserve for. What was read goes on (the
                            // trailers with it when nothing was), and
                            // tonic refuses the short message.
                            Err(frame) => {
                                let held = std::mem::take(read).freeze();
                                *this.state = State::Passing;
                                if held.is_empty() {
                                    return Poll::Ready(Some(Ok(frame)));
                                }
                                return Poll::Ready(Some(Ok(Frame::data(held))));
                            }
                        },
                        Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                        // The body ended inside the header: tonic refuses
                        // the short message; nothing to reserve.
                        None => {
                            let held = std::mem::take(read).freeze();
                            *this.state = State::Passing;
                            if held.is_empty() {
                                return Poll::Ready(None);
                            }
                            return Poll::Ready(Some(Ok(Frame::data(held))));
                        }
                    }
                }
                State::Reserving(acquire, held, declared) => {
                    // The semaphore is never closed; should it be, the call
                    // goes on unbounded rather than fail.
                    let permit = ready!(acquire.as_mut().poll(cx)).ok();
                    if let Some(permit) = permit {
                        *this.slot.lock() =
                            Some(Reservation::new(Arc::clone(this.budget), permit, *declared));
                    }
                    let held = std::mem::take(held);
                    *this.state = State::Passing;
                    return Poll::Ready(Some(Ok(Frame::data(held))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Passing) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
