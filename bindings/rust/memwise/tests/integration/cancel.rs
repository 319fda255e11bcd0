//! Cancellation: from another thread while tokens stream, from the reading
//! thread before any token, and by dropping the stream.
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use memwise::{Event, FinishReason, Request};

use crate::common::*;

/// A request that would run until the 2048-token context is full.
fn endless() -> Request {
    Request { temperature: 0.0, max_tokens: 0, ignore_eos: true, ..Request::new("Once upon a time") }
}

#[test]
fn cancel_from_another_thread_finishes_promptly() {
    let Some(model) = open_stories() else { return };
    let engine = engine(&model, 1, 2048);
    let mut stream = engine.generate(&endless()).unwrap();
    let canceller = stream.cancel_handle();
    let (tx, rx) = mpsc::channel::<()>();
    let cancelled_at = thread::spawn(move || {
        rx.recv().unwrap();
        canceller.cancel();
        Instant::now()
    });

    match stream.next() {
        Some(Ok(Event::Token(_))) => {}
        other => panic!("expected a first token, got {other:?}"),
    }
    tx.send(()).unwrap();
    let finish = loop {
        match stream.next().expect("the stream ends with a finish event").unwrap() {
            Event::Token(_) => {}
            Event::Finished(f) => break f,
        }
    };
    let finished_at = Instant::now();
    let cancelled_at = cancelled_at.join().unwrap();
    assert_eq!(finish.reason, FinishReason::Cancelled, "{finish:?}");
    println!("cancelled after {} tokens", finish.generated_tokens); assert!(finish.generated_tokens < 2000, "cancel did not stop generation: {finish:?}");
    assert!(finished_at.duration_since(cancelled_at) < Duration::from_secs(2), "cancellation was not prompt");
    assert!(stream.next().is_none(), "nothing after the finish event");
    assert!(stream.next().is_none());
}

#[test]
fn cancel_before_reading() {
    let Some(model) = open_stories() else { return };
    let engine = engine(&model, 1, 2048);
    let stream = engine.generate(&endless()).unwrap();
    stream.cancel();
    stream.cancel(); // harmless twice
    let done = stream.read_all().unwrap();
    assert_eq!(done.finish.reason, FinishReason::Cancelled);
    assert!(done.tokens.len() < 2000);
}

#[test]
fn dropping_a_stream_cancels_and_frees_its_sequence() {
    let Some(model) = open_stories() else { return };
    // One sequence: the next request can only run once the dropped one is gone.
    let engine = engine(&model, 1, 2048);
    let mut stream = engine.generate(&endless()).unwrap();
    assert!(matches!(stream.next(), Some(Ok(Event::Token(_)))));
    let handle = stream.cancel_handle();
    let t0 = Instant::now();
    drop(stream);
    handle.cancel(); // the stream is gone: a no-op, not a use of a released handle
    let req = Request { temperature: 0.0, max_tokens: 4, ..Request::new("Once upon a time") };
    let done = engine.generate(&req).unwrap().read_all().unwrap();
    assert_eq!(done.tokens, [432, 383, 286, 261]);
    assert!(t0.elapsed() < Duration::from_secs(5));
}
