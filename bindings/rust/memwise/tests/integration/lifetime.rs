//! Drop order: a stream holds its engine and the engine its model, so the
//! user's handles can go first and the stream still finishes correctly.
use std::thread;

use memwise::{Engine, FinishReason, Model, Request};

use crate::common::*;

fn greedy(prompt: &str, n: u32) -> Request {
    Request { temperature: 0.0, max_tokens: n, ..Request::new(prompt) }
}

#[test]
fn stream_outlives_engine_and_model_handles() {
    let Some(path) = require_model(STORIES) else { return };
    let model = Model::open(&path).unwrap();
    let engine = engine(&model, 1, 0);
    let mut stream = engine.generate(&greedy("Once upon a time", 32)).unwrap();
    let first = stream.next().unwrap().unwrap();
    drop(engine);
    drop(model);
    let rest = stream.read_all().unwrap();
    assert_eq!(rest.finish.reason, FinishReason::Length, "not cancelled by dropping the handles");
    let mut tokens = vec![match first {
        memwise::Event::Token(t) => t.id,
        other => panic!("{other:?}"),
    }];
    tokens.extend(rest.tokens);
    let case = &fixture("greedy_stories260K.txt")[0];
    assert_eq!(tokens, case.generated[..32]);
}

#[test]
fn stream_read_on_another_thread_after_handles_dropped() {
    let Some(path) = require_model(STORIES) else { return };
    let model = Model::open(&path).unwrap();
    let engine = Engine::new(&model, &Default::default()).unwrap();
    let stream = engine.generate(&greedy("Once upon a time", 8)).unwrap();
    let clone = engine.clone();
    drop((engine, model));
    let done = thread::spawn(move || stream.read_all().unwrap()).join().unwrap();
    assert_eq!(done.tokens, fixture("greedy_stories260K.txt")[0].generated[..8]);
    // A clone of the engine is a full engine.
    assert_eq!(clone.generate(&greedy("Once upon a time", 2)).unwrap().read_all().unwrap().tokens, [432, 383]);
    assert_eq!(clone.model().info().unwrap().n_vocab, 512);
}

#[test]
fn many_open_close_cycles() {
    let Some(path) = require_model(STORIES) else { return };
    for _ in 0..20 {
        let model = Model::open(&path).unwrap();
        let engine = engine(&model, 2, 128);
        let a = engine.generate(&greedy("Once upon a time", 4)).unwrap();
        let b = engine.generate(&greedy("Once upon a time", 4)).unwrap();
        // Dropped in the "wrong" order: model, engine, then streams.
        drop(model);
        drop(engine);
        assert_eq!(a.read_all().unwrap().tokens, [432, 383, 286, 261]);
        drop(b); // never read: released (and cancelled) on drop
    }
}
