//! One bounded queue and one dynamic batcher per trust class. A batch holds
//! texts of one trust class only: classes never share a queue, a batch, or
//! the padding of a batch. Sorting by length, to cut padding, happens only
//! inside a class.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::encoder::Encoder;

#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most texts in one encoder call.
    pub max_batch: usize,
    /// How long the first request of a batch waits for company.
    pub max_wait: Duration,
    /// Requests waiting per class before new ones are refused.
    pub queue_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            queue_capacity: 256,
        }
    }
}

/// What ran: one entry per encoder call, with the trust classes and
/// tenants of the requests whose texts it held.
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
    #[error("the queue of this trust class is full; retry later")]
    QueueFull,
    #[error("encoding failed: {0}")]
    Failed(String),
}

struct Job {
    trust_class: String,
    tenant: String,
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, BatchError>>,
}

const RECORDS_KEPT: usize = 4_096;

/// The trust class list that means "any class": each class still gets its
/// own queue and batcher, made on its first request.
pub const ANY_CLASS: &str = "*";

pub struct Batchers {
    queues: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    any_class: bool,
    encoder: Arc<Encoder>,
    config: BatchConfig,
    records: Arc<Mutex<VecDeque<BatchRecord>>>,
}

impl std::fmt::Debug for Batchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes: Vec<String> = self
            .queues
            .lock()
            .map(|q| q.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Batchers")
            .field("classes", &classes)
            .field("any_class", &self.any_class)
            .finish()
    }
}

impl Batchers {
    /// Starts one batcher task per trust class on the current runtime. With
    /// the class `*`, any class is served, each by its own batcher started
    /// on the class's first request.
    pub fn start(classes: &[String], encoder: Arc<Encoder>, config: BatchConfig) -> Self {
        let batchers = Batchers {
            queues: Mutex::new(HashMap::new()),
            any_class: classes.iter().any(|c| c == ANY_CLASS),
            encoder,
            config,
            records: Arc::new(Mutex::new(VecDeque::new())),
        };
        {
            let mut queues = batchers.lock_queues();
            for class in classes.iter().filter(|c| *c != ANY_CLASS) {
                let queue = batchers.spawn_batcher();
                queues.insert(class.clone(), queue);
            }
        }
        batchers
    }

    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Job>>> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn_batcher(&self) -> mpsc::Sender<Job> {
        let (tx, rx) = mpsc::channel(self.config.queue_capacity.max(1));
        tokio::spawn(batch_loop(
            rx,
            Arc::clone(&self.encoder),
            self.config,
            Arc::clone(&self.records),
        ));
        tx
    }

    /// The queue of `class`; with `*`, started on the class's first request.
    fn queue(&self, class: &str) -> Option<mpsc::Sender<Job>> {
        let mut queues = self.lock_queues();
        if let Some(queue) = queues.get(class) {
            return Some(queue.clone());
        }
        if !self.any_class {
            return None;
        }
        let queue = self.spawn_batcher();
        queues.insert(class.to_string(), queue.clone());
        Some(queue)
    }

    /// Embeds `texts` of `tenant` in a batch of `trust_class`.
    pub async fn embed(
        &self,
        trust_class: &str,
        tenant: &str,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, BatchError> {
        let queue = self.queue(trust_class).ok_or(BatchError::ClassNotServed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .try_send(Job {
                trust_class: trust_class.to_string(),
                tenant: tenant.to_string(),
                texts,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => BatchError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => {
                    BatchError::Failed("the batcher stopped".into())
                }
            })?;
        answer
            .await
            .map_err(|_| BatchError::Failed("the batcher dropped the request".into()))?
    }

    /// The most recent batches (up to 4,096), oldest first.
    pub fn records(&self) -> Vec<BatchRecord> {
        self.records
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

async fn batch_loop(
    mut rx: mpsc::Receiver<Job>,
    encoder: Arc<Encoder>,
    config: BatchConfig,
    records: Arc<Mutex<VecDeque<BatchRecord>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut count = jobs[0].texts.len();
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while count < config.max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                _ => break,
            }
        }
        // (job, text) positions, sorted by length so each chunk pads little.
        let mut order: Vec<(usize, usize)> = jobs
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.texts.len()).map(move |t| (j, t)))
            .collect();
        order.sort_by_key(|&(j, t)| jobs[j].texts[t].len());
        let texts: Vec<String> = order
            .iter()
            .map(|&(j, t)| jobs[j].texts[t].clone())
            .collect();
        let distinct = |f: fn(&Job) -> &String| {
            let mut v: Vec<String> = jobs.iter().map(|j| f(j).clone()).collect();
            v.sort();
            v.dedup();
            v
        };
        let (classes, tenants) = (distinct(|j| &j.trust_class), distinct(|j| &j.tenant));
        let (encoder_ref, max_batch) = (Arc::clone(&encoder), config.max_batch.max(1));
        let encoded = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(texts.len());
            let mut sizes = Vec::new();
            for chunk in texts.chunks(max_batch) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                out.extend(encoder_ref.encode(&refs).map_err(|e| e.to_string())?);
                sizes.push(chunk.len());
            }
            Ok::<_, String>((out, sizes))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match encoded {
            Ok((vectors, sizes)) => {
                if let Ok(mut log) = records.lock() {
                    for texts in sizes {
                        if log.len() == RECORDS_KEPT {
                            log.pop_front();
                        }
                        log.push_back(BatchRecord {
                            trust_classes: classes.clone(),
                            tenants: tenants.clone(),
                            texts,
                        });
                    }
                }
                let mut per_job: Vec<Vec<Option<Vec<f32>>>> =
                    jobs.iter().map(|j| vec![None; j.texts.len()]).collect();
                for ((j, t), v) in order.into_iter().zip(vectors) {
                    per_job[j][t] = Some(v);
                }
                for (job, vectors) in jobs.into_iter().zip(per_job) {
                    let _ = job.reply.send(Ok(vectors
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect()));
                }
            }
            Err(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(BatchError::Failed(e.clone())));
                }
            }
        }
    }
}
