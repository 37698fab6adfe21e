//! The harness's own raw client, which every other file here reads answers
//! with: it keeps every answer that arrives, however they are cut into
//! reads.

mod common;

use common::Conn;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn the_reader_keeps_every_answer_that_arrives_in_one_segment() {
    // Four answers in one write: by length, without a body (204), chunked,
    // and until the peer closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\
              HTTP/1.1 204 No Content\r\n\r\n\
              HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\r\nb\r\n2\r\ncd\r\n0\r\n\r\n\
              HTTP/1.1 200 OK\r\n\r\nthe rest",
        )
        .await
        .unwrap();
    });
    let mut conn = Conn::open(addr).await;
    let answers = [
        (200, &b"a"[..]),
        (204, b""),
        (200, b"bcd"),
        (200, b"the rest"),
    ];
    for (status, body) in answers {
        let a = conn.answer().await;
        assert_eq!((a.status, &a.body[..]), (status, body), "{}", a.text());
    }
    assert!(conn.closed_quietly().await);
}
