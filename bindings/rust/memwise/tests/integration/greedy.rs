//! Greedy output equals the C API's: the token ids of tests/data (which the C
//! API reproduces exactly) and the text of the installed `memwise run`.
use std::process::Command;

use memwise::{AccessHint, ChatMessage, Error, Event, FinishReason, Model, ModelOptions, Prompt, Request};

use crate::common::*;

#[test]
fn greedy_tokens_equal_the_c_api_fixture() {
    let Some(model) = open_stories() else { return };
    let info = model.info().unwrap();
    let engine = engine(&model, 1, 2048);
    let cases = fixture("greedy_stories260K.txt");
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(
            model.tokenize(&case.prompt, case.add_special, case.parse_special).unwrap(),
            case.prompt_ids,
            "case {i}: prompt tokens"
        );
        let (want, ends_with_eog) = expected(case, &info);
        let req = Request {
            add_special: case.add_special,
            parse_special: case.parse_special,
            temperature: 0.0,
            max_tokens: want.len() as u32 + 1,
            ..Request::new(Prompt::Text(case.prompt.clone()))
        };
        let done = engine.generate(&req).unwrap().read_all().unwrap();
        assert_eq!(&done.tokens[..want.len().min(done.tokens.len())], &want[..], "case {i}: generated ids");
        if ends_with_eog {
            assert_eq!(done.tokens.len(), want.len(), "case {i}: should stop at end of generation");
            assert_eq!(done.finish.reason, FinishReason::Eos, "case {i}");
        } else {
            assert_eq!(done.tokens.len(), want.len() + 1, "case {i}");
            assert_eq!(done.finish.reason, FinishReason::Length, "case {i}");
        }
        assert_eq!(done.finish.generated_tokens as usize, done.tokens.len());
        assert_eq!(done.finish.prompt_tokens as usize, case.prompt_ids.len());
    }
    println!("stories260K: {} greedy continuations identical to the C API's", cases.len());
}

/// `memwise run MODEL -p PROMPT -n N --temp 0` from $MEMWISE_CLI (test.sh
/// sets it to PREFIX/bin/memwise): its stdout is the completion plus "\n".
fn cli_completion(model: &std::path::Path, prompt: &str, n: u32) -> Option<Vec<u8>> {
    let Some(cli) = std::env::var_os("MEMWISE_CLI") else {
        println!("SKIP: MEMWISE_CLI is not set (the installed bin/memwise); not comparing with the CLI");
        return None;
    };
    let out = Command::new(cli)
        .args(["run".as_ref(), model.as_os_str()])
        .args(["-p", prompt, "-n", &n.to_string(), "--temp", "0", "--threads", "2"])
        .output()
        .expect("run the memwise CLI");
    assert!(out.status.success(), "memwise run failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

/// Streams a greedy completion, concatenating the text of every event.
fn stream_text(engine: &memwise::Engine, prompt: &str, n: u32) -> Vec<u8> {
    let req = Request { temperature: 0.0, max_tokens: n, ..Request::new(prompt) };
    let mut text = Vec::new();
    for ev in engine.generate(&req).unwrap() {
        match ev.unwrap() {
            Event::Token(t) => text.extend_from_slice(&t.text),
            Event::Finished(f) => text.extend_from_slice(&f.text),
        }
    }
    text
}

#[test]
fn greedy_text_equals_the_c_cli() {
    let Some(path) = require_model(STORIES) else { return };
    let model = Model::open(&path).unwrap();
    let engine = engine(&model, 1, 0);
    for prompt in ["Once upon a time", "Lily and her mom went to the park", "The cat sat"] {
        let Some(mut want) = cli_completion(&path, prompt, 24) else { return };
        assert_eq!(want.pop(), Some(b'\n'));
        let got = stream_text(&engine, prompt, 24);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "prompt {prompt:?}");
    }
}

#[test]
fn greedy_text_equals_the_c_cli_on_smollm2() {
    let Some(path) = require_model(SMOLLM) else { return };
    let model = Model::open(&path).unwrap();
    let engine = engine(&model, 1, 512);
    let prompt = "The capital of France is";
    let Some(mut want) = cli_completion(&path, prompt, 12) else { return };
    assert_eq!(want.pop(), Some(b'\n'));
    assert_eq!(String::from_utf8_lossy(&stream_text(&engine, prompt, 12)), String::from_utf8_lossy(&want));
}

#[test]
fn info_tensors_and_tokenizer() {
    let Some(model) = open_stories() else { return };
    let info = model.info().unwrap();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.n_vocab, 512);
    assert_eq!(info.n_layer, 5);
    assert_eq!(info.tokenizer_model, "llama");
    assert_eq!(info.file_type, "F32");
    assert_eq!(info.bos_token, Some(1));
    assert!(info.add_bos);
    let tensors = model.tensors().unwrap();
    assert_eq!(tensors.len(), 48);
    assert!(tensors.iter().any(|t| t.name == "token_embd.weight" && t.shape == [64, 512]));
    assert_eq!(tensors.iter().map(|t| t.n_bytes).sum::<u64>(), info.weight_bytes);

    let ids = model.tokenize("Once upon a time", true, false).unwrap();
    assert_eq!(ids, [1, 403, 407, 261, 378]);
    let text = model.detokenize(&ids, false).unwrap();
    assert_eq!(String::from_utf8_lossy(&text).trim_start(), "Once upon a time");
    assert_eq!(model.tokenize("", false, false).unwrap(), Vec::<i32>::new());
    // A long text needs more than the first buffer guess of the binding.
    let long = "Once upon a time ".repeat(200);
    let long_ids = model.tokenize(&long, false, false).unwrap();
    assert!(long_ids.len() >= 800);
    assert_eq!(String::from_utf8_lossy(&model.detokenize(&long_ids, false).unwrap()).trim(), long.trim());
}

#[test]
fn open_with_options() {
    let Some(path) = require_model(STORIES) else { return };
    let opts = ModelOptions { prefault: true, access_hint: AccessHint::WillNeed, ..ModelOptions::default() };
    let model = Model::open_with(&path, &opts).unwrap();
    assert_eq!(model.info().unwrap().n_vocab, 512);
    let bad = ModelOptions { cache_dir: Some("dir\0name".into()), ..ModelOptions::default() };
    assert!(matches!(Model::open_with(&path, &bad), Err(Error::InvalidArgument(_))));
}

#[test]
fn chat_format() {
    let Some(model) = open_stories() else { return };
    // stories260K has no chat template.
    let err = model.chat_format(&[ChatMessage::user("hi")], true).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(!err.message().is_empty());

    let Some(path) = require_model(SMOLLM) else { return };
    let smol = Model::open(path).unwrap();
    assert_eq!(smol.info().unwrap().chat_template, "chatml");
    let text = smol.chat_format(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")], true).unwrap();
    assert!(
        text.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        "chat text {text:?}"
    );
    assert!(text.contains("<|im_start|>system\nBe brief.<|im_end|>\n"), "chat text {text:?}");
}
