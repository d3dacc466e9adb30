//! One queue and one dynamic batcher per trust class. A batch holds texts
//! of one trust class only: classes never share a queue, a batch, or the
//! padding of a batch.
//!
//! Inside a class, the queue is fair across tenants by tokens, not FIFO of
//! whole requests: each tenant has its own queue of texts, and batches are
//! filled from them by deficit round robin, each tenant's turn worth
//! [`QUANTUM_TOKENS`]. One tenant's request of 1,024 long texts therefore
//! delays another tenant's query by about one batch, not by 1,024 texts. A
//! tenant may have `queue_capacity` texts waiting; one more is refused
//! with that limit, never with the class's load (which would tell it how
//! busy its neighbours are).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokenizers::Encoding;
use tokio::sync::{Notify, oneshot};

use crate::encoder::Encoder;

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most texts in one encoder call.
    pub max_batch: usize,
    /// How long the first text of a batch waits for company.
    pub max_wait: Duration,
    /// Texts one tenant may have waiting in its class's queue; a request
    /// that would pass it is refused whole.
    pub queue_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            queue_capacity: 4_096,
        }
    }
}

/// What ran: one entry per encoder call, with the trust classes and
/// tenants of the texts it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub trust_classes: Vec<String>,
    pub tenants: Vec<String>,
    pub texts: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    #[error("this sidecar does not serve the trust class of this request")]
    ClassNotServed,
    /// The tenant's own queue is full; the message names its own texts
    /// waiting and its limit, nothing of other tenants.
    #[error(
        "this tenant already has {waiting} texts waiting for the encoder, and may have at most {limit}; these {asked} would pass that limit; retry when its earlier requests are answered"
    )]
    QueueFull {
        waiting: usize,
        asked: usize,
        limit: usize,
    },
    #[error("encoding failed: {0}")]
    Failed(String),
}

/// What one request's texts encode to, and how many tokens they took.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of the texts encoded (after truncation at the model's limit).
    pub tokens: u64,
}

/// A tenant's turn in the round robin is worth this many tokens: a long
/// text (up to the model's limit, 256 or 512) takes one or two turns, a
/// short query a fraction of one.
pub const QUANTUM_TOKENS: usize = 256;

/// Requests of at most this many bytes of text are tokenized on the
/// async thread that received them, not on the blocking pool.
const INLINE_TOKENIZE_BYTES: usize = 1_024;

/// One request, answered once each of its texts has its vector.
struct Job {
    reply: Mutex<Option<oneshot::Sender<Result<Encoded, BatchError>>>>,
    state: Mutex<JobState>,
}

struct JobState {
    vectors: Vec<Option<Vec<f32>>>,
    left: usize,
    tokens: u64,
}

impl Job {
    fn gone(&self) -> bool {
        lock(&self.reply).as_ref().is_none_or(|r| r.is_closed())
    }

    fn fail(&self, error: BatchError) {
        if let Some(reply) = lock(&self.reply).take() {
            let _ = reply.send(Err(error));
        }
    }

    fn deliver(&self, index: usize, vector: Vec<f32>) {
        let mut state = lock(&self.state);
        if state.vectors[index].replace(vector).is_none() {
            state.left -= 1;
        }
        if state.left == 0 {
            let vectors = std::mem::take(&mut state.vectors)
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let tokens = state.tokens;
            drop(state);
            if let Some(reply) = lock(&self.reply).take() {
                let _ = reply.send(Ok(Encoded { vectors, tokens }));
            }
        }
    }
}

/// One text waiting: its request, its place there, its tokens.
struct Item {
    job: Arc<Job>,
    index: usize,
    encoding: Encoding,
}

impl Item {
    fn tokens(&self) -> usize {
        self.encoding.get_ids().len()
    }
}

#[derive(Default)]
struct TenantQueue {
    items: VecDeque<Item>,
    /// Tokens this tenant may still take in the round robin.
    deficit: usize,
}

/// The queue of one trust class.
#[derive(Default)]
struct Queue {
    tenants: HashMap<String, TenantQueue>,
    /// Tenants with texts waiting, in round-robin order.
    ring: VecDeque<String>,
    texts: usize,
}

impl Queue {
    fn waiting_of(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |q| q.items.len())
    }

    fn push(&mut self, tenant: &str, items: Vec<Item>) {
        self.texts += items.len();
        let queue = self.tenants.entry(tenant.to_string()).or_insert_with(|| {
            self.ring.push_back(tenant.to_string());
            TenantQueue::default()
        });
        queue.items.extend(items);
    }

    /// Up to `max` texts by deficit round robin: the tenant at the front
    /// takes texts while its deficit covers them; when it cannot afford its
    /// next text it gains a quantum and goes to the back. Texts of requests
    /// whose caller has gone are dropped unencoded.
    fn take(&mut self, max: usize) -> (Vec<Item>, Vec<String>) {
        let mut batch = Vec::new();
        let mut tenants = Vec::new();
        while batch.len() < max {
            let Some(tenant) = self.ring.front().cloned() else {
                break;
            };
            let Some(queue) = self.tenants.get_mut(&tenant) else {
                self.ring.pop_front();
                continue;
            };
            match queue.items.front() {
                None => {
                    self.tenants.remove(&tenant);
                    self.ring.pop_front();
                }
                Some(item) if item.job.gone() => {
                    queue.items.pop_front();
                    self.texts -= 1;
                }
                Some(item) if item.tokens() <= queue.deficit => {
                    queue.deficit -= item.tokens();
                    if let Some(item) = queue.items.pop_front() {
                        self.texts -= 1;
                        batch.push(item);
                        if !tenants.contains(&tenant) {
                            tenants.push(tenant.clone());
                        }
                    }
                }
                Some(_) => {
                    queue.deficit += QUANTUM_TOKENS;
                    self.ring.rotate_left(1);
                }
            }
        }
        tenants.sort();
        (batch, tenants)
    }
}

/// One trust class: its queue, and the signal its batcher waits on.
struct Class {
    name: String,
    queue: Mutex<Queue>,
    arrived: Notify,
}

const RECORDS_KEPT: usize = 4_096;

/// The trust class list that means "any class": each class still gets its
/// own queue and batcher, made on its first request.
pub const ANY_CLASS: &str = "*";

pub struct Batchers {
    classes: Mutex<HashMap<String, Arc<Class>>>,
    any_class: bool,
    encoder: Arc<Encoder>,
    config: BatchConfig,
    records: Arc<Mutex<VecDeque<BatchRecord>>>,
    stopped: Arc<AtomicBool>,
}

impl std::fmt::Debug for Batchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes: Vec<String> = lock(&self.classes).keys().cloned().collect();
        f.debug_struct("Batchers")
            .field("classes", &classes)
            .field("any_class", &self.any_class)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Batchers {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        for class in lock(&self.classes).values() {
            class.arrived.notify_one();
        }
    }
}

impl Batchers {
    /// Starts one batcher task per trust class on the current runtime. With
    /// the class `*`, any class is served, each by its own batcher started
    /// on the class's first request.
    pub fn start(classes: &[String], encoder: Arc<Encoder>, config: BatchConfig) -> Self {
        let batchers = Batchers {
            classes: Mutex::new(HashMap::new()),
            any_class: classes.iter().any(|c| c == ANY_CLASS),
            encoder,
            config,
            records: Arc::new(Mutex::new(VecDeque::new())),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        {
            let mut map = lock(&batchers.classes);
            for class in classes.iter().filter(|c| *c != ANY_CLASS) {
                map.insert(class.clone(), batchers.spawn_batcher(class));
            }
        }
        batchers
    }

    fn spawn_batcher(&self, name: &str) -> Arc<Class> {
        let class = Arc::new(Class {
            name: name.to_string(),
            queue: Mutex::new(Queue::default()),
            arrived: Notify::new(),
        });
        tokio::spawn(batch_loop(
            Arc::clone(&class),
            Arc::clone(&self.encoder),
            self.config,
            Arc::clone(&self.records),
            Arc::clone(&self.stopped),
        ));
        class
    }

    /// The class `name`; with `*`, started on the class's first request.
    fn class(&self, name: &str) -> Option<Arc<Class>> {
        let mut classes = lock(&self.classes);
        if let Some(class) = classes.get(name) {
            return Some(Arc::clone(class));
        }
        if !self.any_class {
            return None;
        }
        let class = self.spawn_batcher(name);
        classes.insert(name.to_string(), Arc::clone(&class));
        Some(class)
    }

    fn check_room(&self, queue: &Queue, tenant: &str, asked: usize) -> Result<(), BatchError> {
        let (waiting, limit) = (queue.waiting_of(tenant), self.config.queue_capacity.max(1));
        if waiting + asked > limit {
            return Err(BatchError::QueueFull {
                waiting,
                asked,
                limit,
            });
        }
        Ok(())
    }

    /// Embeds `texts` of `tenant` in batches of `trust_class`. The texts
    /// are tokenized here, apart from every other request, then wait in
    /// the tenant's own queue of the class.
    pub async fn embed(
        &self,
        trust_class: &str,
        tenant: &str,
        texts: Vec<String>,
    ) -> Result<Encoded, BatchError> {
        let class = self.class(trust_class).ok_or(BatchError::ClassNotServed)?;
        if texts.is_empty() {
            return Ok(Encoded {
                vectors: Vec::new(),
                tokens: 0,
            });
        }
        // Refused before the tokenizer's work when the queue is full already.
        self.check_room(&lock(&class.queue), tenant, texts.len())?;
        let bytes: usize = texts.iter().map(String::len).sum();
        // A query or two is tokenized here (tens of microseconds); longer
        // requests on the blocking pool.
        let encoder = Arc::clone(&self.encoder);
        let tokenize = move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            encoder.tokenize(&refs)
        };
        let encodings = if bytes <= INLINE_TOKENIZE_BYTES {
            tokenize()
        } else {
            tokio::task::spawn_blocking(tokenize)
                .await
                .map_err(|e| BatchError::Failed(e.to_string()))?
        }
        .map_err(|e| BatchError::Failed(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let job = Arc::new(Job {
            reply: Mutex::new(Some(reply)),
            state: Mutex::new(JobState {
                vectors: vec![None; encodings.len()],
                left: encodings.len(),
                tokens: encodings.iter().map(|e| e.get_ids().len() as u64).sum(),
            }),
        });
        let items: Vec<Item> = encodings
            .into_iter()
            .enumerate()
            .map(|(index, encoding)| Item {
                job: Arc::clone(&job),
                index,
                encoding,
            })
            .collect();
        {
            let mut queue = lock(&class.queue);
            self.check_room(&queue, tenant, items.len())?;
            queue.push(tenant, items);
        }
        class.arrived.notify_one();
        answer
            .await
            .map_err(|_| BatchError::Failed("the batcher dropped the request".into()))?
    }

    /// The most recent batches (up to 4,096), oldest first.
    pub fn records(&self) -> Vec<BatchRecord> {
        lock(&self.records).iter().cloned().collect()
    }
}

async fn batch_loop(
    class: Arc<Class>,
    encoder: Arc<Encoder>,
    config: BatchConfig,
    records: Arc<Mutex<VecDeque<BatchRecord>>>,
    stopped: Arc<AtomicBool>,
) {
    let max_batch = config.max_batch.max(1);
    loop {
        // Wait for a first text, then up to max_wait for company.
        while lock(&class.queue).texts == 0 {
            if stopped.load(Ordering::Acquire) {
                return;
            }
            class.arrived.notified().await;
        }
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while lock(&class.queue).texts < max_batch {
            if tokio::time::timeout_at(deadline, class.arrived.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        let (items, tenants) = lock(&class.queue).take(max_batch);
        if items.is_empty() {
            continue;
        }
        let texts = items.len();
        let (targets, encodings): (Vec<(Arc<Job>, usize)>, Vec<Encoding>) = items
            .into_iter()
            .map(|item| ((item.job, item.index), item.encoding))
            .unzip();
        let encoder = Arc::clone(&encoder);
        let encoded = tokio::task::spawn_blocking(move || encode_batch(&encoder, &encodings))
            .await
            .unwrap_or_else(|e| vec![Err(e.to_string()); texts]);
        let mut log = lock(&records);
        if log.len() == RECORDS_KEPT {
            log.pop_front();
        }
        log.push_back(BatchRecord {
            trust_classes: vec![class.name.clone()],
            tenants,
            texts,
        });
        drop(log);
        for ((job, index), vector) in targets.into_iter().zip(encoded) {
            match vector {
                Ok(vector) => job.deliver(index, vector),
                Err(e) => job.fail(BatchError::Failed(e)),
            }
        }
    }
}

/// Encodes one batch in one call. Should that call fail, each text is
/// encoded alone, so that a failure fails only the requests of the texts
/// that fail alone, never their batch neighbours'.
fn encode_batch(encoder: &Encoder, encodings: &[Encoding]) -> Vec<Result<Vec<f32>, String>> {
    let refs: Vec<&Encoding> = encodings.iter().collect();
    match encoder.encode_tokenized(&refs) {
        Ok(vectors) if vectors.len() == encodings.len() => vectors.into_iter().map(Ok).collect(),
        Ok(_) | Err(_) => refs
            .iter()
            .map(|e| {
                encoder
                    .encode_tokenized(std::slice::from_ref(e))
                    .map_err(|e| e.to_string())
                    .and_then(|mut v| v.pop().ok_or_else(|| "no vector".to_string()))
            })
            .collect(),
    }
}
