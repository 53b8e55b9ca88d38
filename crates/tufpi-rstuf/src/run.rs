//! Running the service: the worker thread, the expiry-refresh timer and the HTTP server.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::info;

use crate::error::RstufError;
use crate::routes::router;
use crate::service::{Job, Service};
use crate::worker::Worker;

/// How often online roles are checked for expiry (RSTUF's beat runs its bump every 5 min).
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// Options of `tufpi repo serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: String,
    /// Data directory (tasks, settings, the repository and its published metadata).
    pub data_dir: PathBuf,
    /// Directory of `fn:` online keys.
    pub online_key_dir: Option<PathBuf>,
    /// Connection limits.
    pub conn: tufpi_simple::conn::Limits,
}

/// A started service: its shared state and its worker thread.
pub struct Started {
    /// Shared state (give it to [`router`]).
    pub service: Arc<Service>,
    worker: Option<JoinHandle<()>>,
}

impl Started {
    /// Stop the worker after the jobs queued before this call.
    pub fn stop(mut self) {
        self.service.send(Job::Stop);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Open the service in `data_dir` and start its worker (tasks left unfinished by a previous
/// process are queued again first).
pub fn start(
    data_dir: &std::path::Path,
    online_key_dir: Option<PathBuf>,
) -> Result<Started, RstufError> {
    let (svc, rx) = Service::open(data_dir, online_key_dir)?;
    let svc = Arc::new(svc);
    let worker = Worker::new(svc.clone())?;
    let handle = std::thread::Builder::new()
        .name("rstuf-worker".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| RstufError::io("starting the worker thread", e))?;
    let n = svc.requeue_unfinished()?;
    if n > 0 {
        info!(
            tasks = n,
            "tasks left unfinished by the previous run queued again"
        );
    }
    Ok(Started {
        service: svc,
        worker: Some(handle),
    })
}

/// Serve until interrupted. Prints `listening on http://ADDR` to stderr once ready.
pub fn serve(opts: ServeOptions) -> Result<(), RstufError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tufpi-rstuf")
        .build()
        .map_err(|e| RstufError::io("starting the runtime", e))?;
    let started = start(&opts.data_dir, opts.online_key_dir.clone())?;
    let svc = started.service.clone();
    let served = rt.block_on(async move {
        let listener = tufpi_simple::conn::bind(&opts.listen)
            .await
            .map_err(|e| RstufError::io(format!("listening on {}", opts.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RstufError::io("reading the bound address", e))?;
        let timer_svc = svc.clone();
        let timer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            loop {
                tick.tick().await;
                timer_svc.send(Job::Refresh);
            }
        });
        eprintln!(
            "tufpi repo serve (RSTUF API v1) of {} listening on http://{addr} \
             (API: http://{addr}/api/v1/, metadata: http://{addr}/metadata/)",
            opts.data_dir.display()
        );
        let served = tufpi_simple::conn::serve(
            listener,
            router(svc),
            opts.conn.clone(),
            tufpi_simple::shutdown_signal(),
        )
        .await
        .map_err(|e| RstufError::io("serving", e));
        timer.abort();
        served
    });
    started.stop();
    served
}
