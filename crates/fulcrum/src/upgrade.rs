//! Hand-over between two `fulcrum serve` processes on one data dir, so that a new binary
//! replaces a running one without refusing a connection.
//!
//! Every serving node listens on the control socket `DIR/fulcrum.sock` (mode 0600). A `serve`
//! that starts finds a live node there and asks it to hand over; the conversation is one JSON
//! line at a time:
//!
//! 1. new -> old: `{"hand_over": true, "pid": N}`;
//! 2. old: stops taking API calls, saves the health of instances, then -> new:
//!    `{"pid": N, "api": true, "sockets": K, "waiting_for": [...]}` with, as `SCM_RIGHTS`, the API
//!    socket (when `api`) and then the K listening sockets of its data plane; or `{"error": ...}`;
//! 3. new: opens the store, listens on those sockets, applies the state; once it can serve ->
//!    old: `{"ready": true}` (or `{"abort": why}`: the old node carries on);
//! 4. old: stops accepting, drains and exits 0. Both accept on the same sockets until then, so
//!    connections that arrive meanwhile wait in the kernel's queue for one of them. If the
//!    connection closes before `ready` (the new process died), the old node carries on.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde_json::{json, Value};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

/// The control socket in the data dir.
pub const SOCKET_FILE: &str = "fulcrum.sock";

/// How long the running node may take to answer a request to hand over (it waits for API calls
/// under way, which a busy database bounds at a few seconds).
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors per message: the kernel takes at most 253 at once.
const FDS_PER_MESSAGE: usize = 200;
/// A message line longer than this is not one of ours.
const MAX_LINE: usize = 1 << 20;

/// What a process taking over received from the one it replaces.
pub struct Takeover {
    conn: UnixStream,
    /// The process being replaced.
    pub pid: u32,
    /// Its API socket.
    pub api: Option<std::net::TcpListener>,
    /// Its listening sockets.
    pub sockets: Vec<std::net::TcpListener>,
    /// What kept it from serving fully when it handed over (`DataPlane::waiting_for`): the new
    /// process need not do better to be ready.
    pub waiting_for: Vec<String>,
}

/// Asks the node serving on `dir` to hand over its sockets. `None` when no node is serving there
/// (no socket file, or a stale one with nobody behind it).
pub async fn take_over(dir: &Path) -> anyhow::Result<Option<Takeover>> {
    let path = dir.join(SOCKET_FILE);
    let conn = match UnixStream::connect(&path).await {
        Ok(conn) => conn,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            // A data dir whose path does not fit in a socket address: no control socket there.
            tracing::warn!(path = %path.display(), error = %e, "cannot reach the control socket");
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot connect to {}", path.display()));
        }
    };
    let request = json!({"hand_over": true, "pid": std::process::id()});
    let mut reader = Reader::default();
    let offer = tokio::time::timeout(OFFER_TIMEOUT, async {
        send_line(&conn, &request, &[]).await?;
        reader.line(&conn).await
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "the fulcrum serving on {} did not answer within {OFFER_TIMEOUT:?}",
            dir.display()
        )
    })?
    .with_context(|| {
        format!(
            "asking the fulcrum serving on {} to hand over",
            dir.display()
        )
    })?;
    if let Some(error) = offer.get("error") {
        bail!(
            "the fulcrum serving on {} refused to hand over: {}",
            dir.display(),
            error.as_str().unwrap_or_default()
        );
    }
    let pid = offer
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
        .context("the hand-over offer has no pid")?;
    let api = offer.get("api").and_then(Value::as_bool).unwrap_or(false);
    let count = offer
        .get("sockets")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .context("the hand-over offer does not say how many sockets come")?;
    let waiting_for = offer
        .get("waiting_for")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let expected = count + usize::from(api);
    let mut fds = tokio::time::timeout(OFFER_TIMEOUT, reader.fds(&conn, expected))
        .await
        .map_err(|_| anyhow::anyhow!("pid {pid} did not send its sockets"))?
        .with_context(|| format!("receiving the sockets of pid {pid}"))?
        .into_iter();
    let api = if api {
        fds.next().map(std::net::TcpListener::from)
    } else {
        None
    };
    let sockets = fds.map(std::net::TcpListener::from).collect();
    Ok(Some(Takeover {
        conn,
        pid,
        api,
        sockets,
        waiting_for,
    }))
}

impl Takeover {
    /// Tells the process being replaced to stop and drain: this one serves now.
    pub async fn ready(self) -> io::Result<()> {
        send_line(&self.conn, &json!({"ready": true}), &[]).await
    }

    /// Tells the process being replaced to carry on.
    pub async fn abort(self, why: &str) {
        let _ = send_line(&self.conn, &json!({"abort": why}), &[]).await;
    }
}

/// The control socket a serving node listens on.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file, to remove it at exit only if it is still this one's.
    id: (u64, u64),
}

impl ControlSocket {
    /// Listens on `dir/fulcrum.sock`, replacing whatever is there in one rename: there is no
    /// moment when a starting process finds no socket.
    pub fn bind(dir: &Path) -> io::Result<ControlSocket> {
        let path = dir.join(SOCKET_FILE);
        let staging = dir.join(format!("{SOCKET_FILE}.{}", std::process::id()));
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging)?;
        let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&staging, &path))
            .and_then(|()| std::fs::metadata(&path));
        match placed {
            Ok(meta) => Ok(ControlSocket {
                listener,
                path,
                id: (meta.dev(), meta.ino()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&staging);
                Err(e)
            }
        }
    }

    /// The next connection on the control socket (cancel-safe).
    pub async fn accept(&self) -> io::Result<UnixStream> {
        self.listener.accept().await.map(|(conn, _)| conn)
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // After a hand-over the file is the new process's: left alone.
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A process asking this one to hand over.
pub struct HandOver {
    conn: UnixStream,
    reader: Reader,
    /// Its pid.
    pub pid: u32,
}

/// How a hand-over ended.
pub enum Answer {
    /// The new process serves: this one stops.
    Ready,
    /// The new process gave up (or died, or said something else): this one carries on.
    Abort(String),
}

impl HandOver {
    /// Reads what the process on the other end of `conn` asks for: only a hand-over is known.
    pub async fn read(conn: UnixStream) -> io::Result<HandOver> {
        let mut reader = Reader::default();
        let request = tokio::time::timeout(OFFER_TIMEOUT, reader.line(&conn))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
        if request.get("hand_over").and_then(Value::as_bool) != Some(true) {
            let _ = send_line(&conn, &json!({"error": "unknown request"}), &[]).await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown request on the control socket: {request}"),
            ));
        }
        let pid = request
            .get("pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0);
        Ok(HandOver { conn, reader, pid })
    }

    /// Sends the API socket and the listening sockets, saying what this node was still waiting
    /// for.
    pub async fn offer(
        &self,
        api: Option<BorrowedFd<'_>>,
        sockets: &[OwnedFd],
        waiting_for: &[String],
    ) -> io::Result<()> {
        let header = json!({
            "pid": std::process::id(),
            "api": api.is_some(),
            "sockets": sockets.len(),
            "waiting_for": waiting_for,
        });
        let fds: Vec<BorrowedFd<'_>> = api
            .into_iter()
            .chain(sockets.iter().map(AsFd::as_fd))
            .collect();
        send_line(&self.conn, &header, &fds).await
    }

    /// Refuses to hand over.
    pub async fn refuse(self, why: &str) {
        let _ = send_line(&self.conn, &json!({"error": why}), &[]).await;
    }

    /// Waits for the new process to be ready, to give up, or to go away.
    pub async fn answer(mut self) -> Answer {
        match self.reader.line(&self.conn).await {
            Ok(v) if v.get("ready").and_then(Value::as_bool) == Some(true) => Answer::Ready,
            Ok(v) => Answer::Abort(
                v.get("abort")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("unexpected message {v}"), str::to_owned),
            ),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Answer::Abort("it went away before it was ready".to_owned())
            }
            Err(e) => Answer::Abort(format!("the control connection failed: {e}")),
        }
    }
}

/// Sends `value` as one line, with `fds` attached (split over several messages when there are
/// many: each carries at least one byte, a newline).
async fn send_line(conn: &UnixStream, value: &Value, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    let mut chunks = fds.chunks(FDS_PER_MESSAGE);
    let first = chunks.next().unwrap_or_default();
    send_with_fds(conn, &line, first).await?;
    for chunk in chunks {
        send_with_fds(conn, b"\n", chunk).await?;
    }
    Ok(())
}

async fn send_with_fds(conn: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
    let sent = conn
        .async_io(Interest::WRITABLE, || {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(io::Error::other("too many descriptors for one message"));
            }
            rustix::net::sendmsg(
                conn,
                &[IoSlice::new(bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        })
        .await?;
    // The descriptors went with the first byte; the rest of the line follows plainly.
    let mut rest = &bytes[sent..];
    while !rest.is_empty() {
        let n = conn.try_write(rest);
        match n {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads lines and the descriptors that come with them.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    eof: bool,
}

impl Reader {
    /// The next non-empty line, as JSON.
    async fn line(&mut self, conn: &UnixStream) -> io::Result<Value> {
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            self.recv(conn).await?;
        }
    }

    /// The `n` descriptors announced by the last line, in the order they were sent.
    async fn fds(&mut self, conn: &UnixStream, n: usize) -> io::Result<Vec<OwnedFd>> {
        while self.fds.len() < n {
            self.recv(conn).await?;
        }
        Ok(std::mem::take(&mut self.fds))
    }

    async fn recv(&mut self, conn: &UnixStream) -> io::Result<()> {
        if self.eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut data = [0u8; 4096];
        let mut space =
            vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = conn
            .async_io(Interest::READABLE, || {
                rustix::net::recvmsg(
                    conn,
                    &mut [IoSliceMut::new(&mut data)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)
            })
            .await?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "descriptors were lost (truncated control message)",
            ));
        }
        if received.bytes == 0 {
            self.eof = true;
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&data[..received.bytes]);
        Ok(())
    }
}
