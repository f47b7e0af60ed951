//! Sending and receiving at once from two tasks through the split halves.

use ws_client::{Error, Message, MessageType};

use crate::support::{connect, echo_server, within};

#[tokio::test]
async fn a_sender_task_and_a_receiver_task_share_one_connection() {
    let server = echo_server(&[]);
    let (sender, mut receiver) = connect(server.url()).await.split().unwrap();
    let writer = tokio::spawn(async move {
        for i in 0..2000u32 {
            within(sender.send(Message::binary(i.to_be_bytes().to_vec())))
                .await
                .unwrap();
        }
        sender
    });
    for i in 0..2000u32 {
        let echo = within(receiver.receive_message()).await.unwrap();
        assert_eq!(echo.data, i.to_be_bytes());
    }
    let sender = within(writer).await.unwrap();
    within(sender.close(1000, "done")).await.unwrap();
    let close = within(receiver.receive_message()).await.unwrap();
    assert_eq!(close.message_type, MessageType::Close);
    assert_eq!(close.close_code(), Some(1000));
    assert!(matches!(
        within(receiver.receive_message()).await,
        Err(Error::ConnectionClosed)
    ));
    assert!(matches!(
        within(sender.send("late")).await,
        Err(Error::ConnectionClosed)
    ));
}

#[tokio::test]
async fn cloned_senders_interleave_whole_messages() {
    let server = echo_server(&[]);
    let (sender, mut receiver) = connect(server.url()).await.split().unwrap();
    let mut writers = Vec::new();
    for writer in 0..4u8 {
        let sender = sender.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..250u32 {
                let mut payload = vec![writer; 1000];
                payload[..4].copy_from_slice(&i.to_be_bytes());
                within(sender.send(payload)).await.unwrap();
            }
        }));
    }
    let mut next_from = [0u32; 4];
    for _ in 0..1000 {
        let echo = within(receiver.receive_message()).await.unwrap();
        let writer = echo.data[999] as usize;
        assert!(
            echo.data[4..].iter().all(|&b| b as usize == writer),
            "a message was torn"
        );
        let index = u32::from_be_bytes(echo.data[..4].try_into().unwrap());
        assert_eq!(
            index, next_from[writer],
            "messages of writer {writer} out of order"
        );
        next_from[writer] += 1;
    }
    for writer in writers {
        within(writer).await.unwrap();
    }
}

#[tokio::test]
async fn the_server_going_away_wakes_a_waiting_receiver() {
    let server = echo_server(&[]);
    let (sender, mut receiver) = connect(server.url()).await.split().unwrap();
    let waiting = tokio::spawn(async move { within(receiver.receive_message()).await });
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    let close = within(waiting).await.unwrap().expect("the close frame");
    assert_eq!(close.close_code(), Some(1001));
    assert!(matches!(
        within(sender.send("late")).await,
        Err(Error::ClosedByPeer { code: 1001, .. })
    ));
    let (status, _) = within(stopping).await.unwrap();
    assert!(status.success());
}
