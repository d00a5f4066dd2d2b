//! Decoding `aws-chunked` request bodies in open mode.
//!
//! Current SDKs and the aws CLI send uploads as `aws-chunked` (`<hex size>[;chunk-signature=..]
//! CRLF <bytes> CRLF ... 0 CRLF <trailers> CRLF`), often with a checksum trailer. s3s decodes
//! this only for requests it has verified, and in open mode codeyard cannot verify (any secret
//! is accepted), so the HTTP adapter strips the signature and decodes the framing here. Chunk
//! signatures are ignored (open mode trusts the client); trailers are kept in [`OpenTrailers`]
//! for the checksum check after the body.

use crate::api::OpenTrailers;
use crate::body::StdError;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

enum Phase {
    Header,
    Data(usize),
    DataEnd,
    Trailers,
    Done,
}

struct Decoder<S> {
    inner: S,
    buf: BytesMut,
    phase: Phase,
    eof: bool,
    trailers: OpenTrailers,
    trailer_map: http::HeaderMap,
}

fn bad(msg: &str) -> StdError {
    format!("malformed aws-chunked body: {msg}").into()
}

pub fn decode<S>(
    inner: S,
    trailers: OpenTrailers,
) -> impl Stream<Item = Result<Bytes, StdError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, StdError>> + Send + Unpin + 'static,
{
    let d = Decoder {
        inner,
        buf: BytesMut::new(),
        phase: Phase::Header,
        eof: false,
        trailers,
        trailer_map: http::HeaderMap::new(),
    };
    futures::stream::unfold(d, |mut d| async move {
        match d.next_chunk().await {
            Ok(Some(b)) => Some((Ok(b), d)),
            Ok(None) => None,
            Err(e) => {
                d.phase = Phase::Done;
                Some((Err(e), d))
            }
        }
    })
}

impl<S> Decoder<S>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    /// Reads more input; false at the end of the body.
    async fn fill(&mut self) -> Result<bool, StdError> {
        if self.eof {
            return Ok(false);
        }
        match self.inner.next().await {
            Some(Ok(b)) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    async fn line(&mut self) -> Result<Option<String>, StdError> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(i);
                self.buf.advance(2);
                return Ok(Some(String::from_utf8_lossy(&line).to_string()));
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = self.buf.split();
                return Ok(Some(String::from_utf8_lossy(&rest).to_string()));
            }
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StdError> {
        loop {
            match self.phase {
                Phase::Done => return Ok(None),
                Phase::Header => {
                    let line = self
                        .line()
                        .await?
                        .ok_or_else(|| bad("body ended before the final chunk"))?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size =
                        usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                    self.phase = if size == 0 {
                        Phase::Trailers
                    } else {
                        Phase::Data(size)
                    };
                }
                Phase::Data(remaining) => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(bad("body ended inside a chunk"));
                    }
                    let n = remaining.min(self.buf.len());
                    let out = self.buf.split_to(n).freeze();
                    self.phase = if n == remaining {
                        Phase::DataEnd
                    } else {
                        Phase::Data(remaining - n)
                    };
                    return Ok(Some(out));
                }
                Phase::DataEnd => {
                    while self.buf.len() < 2 {
                        if !self.fill().await? {
                            return Err(bad("body ended after a chunk"));
                        }
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(bad("chunk longer than its declared size"));
                    }
                    self.buf.advance(2);
                    self.phase = Phase::Header;
                }
                Phase::Trailers => match self.line().await? {
                    Some(l) if !l.is_empty() => {
                        if let Some((k, v)) = l.split_once(':') {
                            let k = k.trim().to_ascii_lowercase();
                            if let (Ok(name), Ok(value)) = (
                                http::HeaderName::from_bytes(k.as_bytes()),
                                http::HeaderValue::from_str(v.trim()),
                            ) {
                                self.trailer_map.insert(name, value);
                            }
                        }
                    }
                    _ => {
                        if let Ok(mut slot) = self.trailers.0.lock() {
                            *slot = Some(std::mem::take(&mut self.trailer_map));
                        }
                        self.phase = Phase::Done;
                        return Ok(None);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_signed_chunks_and_trailers_split_anywhere() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=x\r\nx-amz-checksum-crc32:AAAA\r\nx-amz-trailer-signature:zz\r\n\r\n";
        for split in [1usize, 3, 7, 1000] {
            let pieces: Vec<Result<Bytes, StdError>> = body
                .chunks(split)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let t = OpenTrailers::default();
            let out: Vec<Bytes> = decode(futures::stream::iter(pieces), t.clone())
                .map(|r| r.unwrap())
                .collect()
                .await;
            assert_eq!(out.concat(), b"hello world");
            let got = t.0.lock().unwrap().clone().unwrap();
            assert_eq!(got.get("x-amz-checksum-crc32").unwrap(), "AAAA");
        }
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error() {
        let pieces: Vec<Result<Bytes, StdError>> = vec![Ok(Bytes::from_static(b"a\r\nhello"))];
        let out: Vec<Result<Bytes, StdError>> =
            decode(futures::stream::iter(pieces), OpenTrailers::default())
                .collect()
                .await;
        assert!(out.iter().any(|r| r.is_err()));
    }
}
