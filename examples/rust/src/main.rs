//! generate - stream a completion with the memwise Rust bindings.
//!
//!     generate MODEL.gguf "Once upon a time" [MAX_TOKENS]
//!
//! Opens the model, creates an engine, submits one greedy request and prints
//! each piece of text as the engine produces it (the Rust twin of
//! examples/c/generate.c, with the same output).
use std::io::Write;
use std::process::ExitCode;

use memwise::{Engine, EngineOptions, Event, Model, Request};

fn run(path: &str, prompt: &str, max_tokens: u32) -> Result<(), memwise::Error> {
    // The file is memory-mapped; nothing is copied.
    let model = Model::open(path)?;
    // The engine keeps the model alive, so `model` could be dropped now.
    let engine = Engine::new(&model, &EngineOptions::default())?;
    let request = Request { max_tokens, temperature: 0.0, ..Request::new(prompt) };

    let mut out = std::io::stdout().lock();
    for event in engine.generate(&request)? {
        // Text is bytes: a token may end inside a UTF-8 character.
        match event? {
            Event::Token(token) => {
                let _ = out.write_all(&token.text);
                let _ = out.flush();
            }
            Event::Finished(finish) => {
                let _ = out.write_all(&finish.text);
                let _ = writeln!(out);
                eprintln!("[{} prompt tokens, {} generated]", finish.prompt_tokens, finish.generated_tokens);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} MODEL.gguf PROMPT [MAX_TOKENS]", args[0]);
        return ExitCode::from(2);
    }
    let max_tokens = match args.get(3).map(|n| n.parse::<u32>()) {
        None => 64,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("MAX_TOKENS must be a number, not {:?}", args[3]);
            return ExitCode::from(2);
        }
    };
    match run(&args[1], &args[2], max_tokens) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}
