//! Keeps changes out of a node that is handing over to a new process, so that no write lands in
//! the old process once the new one has read the store: the API answers `ServiceUnavailable`
//! (503, which the SDKs retry) and closes HTTP/1 connections after their answer, so that the
//! retry reaches whichever process accepts now; the console shows the same.

#[derive(Debug, Default)]
pub struct Pause {
    paused: std::sync::atomic::AtomicBool,
    /// Held shared by every call while it runs; `pause` takes it exclusively to wait for them.
    calls: std::sync::RwLock<()>,
}

impl Pause {
    /// Marks a call under way until the guard drops; `pause` waits for it.
    pub fn enter(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.calls.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses calls from now on and waits for those under way to finish. Blocks: run it on
    /// the blocking pool.
    pub fn pause(&self) {
        self.paused.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(self.calls.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Takes calls again.
    pub fn resume(&self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::SeqCst)
    }
}
