//! Bodies between axum, s3s and the blob store, always streamed (never buffered whole).

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use s3s::stream::{ByteStream, RemainingLength};
use std::pin::Pin;
use std::task::{Context, Poll};
use sync_wrapper::SyncWrapper;

pub type StdError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An object's bytes on their way out, with their exact length (s3s sets Content-Length from
/// it). s3s wants `Sync` streams; the store's streams are only `Send`, and a `SyncWrapper` is
/// the sound bridge (the stream is only ever polled through `&mut`).
pub struct ObjectBody {
    inner: SyncWrapper<BoxStream<'static, Result<Bytes, StdError>>>,
    /// None when the length is not known up front.
    remaining: Option<u64>,
}

impl ObjectBody {
    pub fn new(inner: BoxStream<'static, Result<Bytes, StdError>>, length: u64) -> Self {
        ObjectBody {
            inner: SyncWrapper::new(inner),
            remaining: Some(length),
        }
    }

    pub fn unknown_length(inner: BoxStream<'static, Result<Bytes, StdError>>) -> Self {
        ObjectBody {
            inner: SyncWrapper::new(inner),
            remaining: None,
        }
    }
}

impl Stream for ObjectBody {
    type Item = Result<Bytes, StdError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.get_mut().poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(b))) = &polled {
            let n = b.len() as u64;
            self.remaining = self.remaining.map(|r| r.saturating_sub(n));
        }
        polled
    }
}

impl ByteStream for ObjectBody {
    fn remaining_length(&self) -> RemainingLength {
        match self.remaining {
            Some(n) => RemainingLength::new_exact(n as usize),
            None => RemainingLength::unknown(),
        }
    }
}
