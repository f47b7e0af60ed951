//! `Outbound` on a writer that stops taking bytes.

use super::*;

/// A writer that stops taking bytes (a full fixed-size buffer answers `Ok(0)`) is a
/// `WriteZero` error, not a flush that spins for ever; what fitted was written in order.
#[tokio::test]
async fn a_writer_that_takes_nothing_more_is_write_zero() {
    let mut room = [0u8; 10];
    let mut outbound = Outbound::new(std::io::Cursor::new(&mut room[..]), Role::Server);
    outbound.encode(MessageType::Text, &[b'x'; 100]);
    let error = outbound.flush().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::WriteZero);
    assert_eq!(outbound.pending(), 92);
    assert_eq!(
        (outbound.encoded_total(), outbound.written_total()),
        (102, 10)
    );
    drop(outbound);
    assert_eq!(room[..2], [0x81, 100]);
    assert_eq!(room[2..], [b'x'; 8]);
}
