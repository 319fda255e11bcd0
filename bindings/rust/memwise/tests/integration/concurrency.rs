//! One engine, 32 threads generating at once: every result is the greedy
//! continuation the C API gives for that prompt alone.
use std::sync::{Arc, Barrier};
use std::thread;

use memwise::{CancelHandle, Engine, FinishReason, Model, Prompt, Request, Stream};

use crate::common::*;

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<Model>();
    assert_send_sync::<Engine>();
    assert_send_sync::<CancelHandle>();
    assert_send::<Stream>();
}

#[test]
fn thirty_two_threads_on_one_engine() {
    let Some(model) = open_stories() else { return };
    let info = model.info().unwrap();
    let engine = engine(&model, 4, 256);
    let cases = Arc::new(fixture("greedy_stories260K.txt"));
    const THREADS: usize = 32;
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let engine = engine.clone();
            let cases = cases.clone();
            let info = info.clone();
            let start = start.clone();
            thread::spawn(move || {
                let case = &cases[i % cases.len()];
                let (want, ends_with_eog) = expected(case, &info);
                // Half the threads pass token ids, half text.
                let prompt = if i % 2 == 0 {
                    Prompt::Tokens(case.prompt_ids.clone())
                } else {
                    Prompt::Text(case.prompt.clone())
                };
                let req = Request {
                    add_special: case.add_special,
                    parse_special: case.parse_special,
                    temperature: 0.0,
                    max_tokens: want.len() as u32 + 1,
                    ..Request::new(prompt)
                };
                start.wait();
                let done = engine.generate(&req).unwrap().read_all().unwrap();
                assert_eq!(&done.tokens[..want.len()], &want[..], "thread {i}");
                let reason = if ends_with_eog { FinishReason::Eos } else { FinishReason::Length };
                assert_eq!(done.finish.reason, reason, "thread {i}");
            })
        })
        .collect();
    drop(engine); // the threads' clones keep it alive
    for w in workers {
        w.join().expect("a generating thread failed");
    }
}
