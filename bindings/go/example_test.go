package memwise_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"memwise.dev/memwise"
)

func Example() {
	model, err := memwise.OpenModel(os.Getenv("MEMWISE_MODEL"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	engine, err := model.NewEngine(&memwise.EngineOptions{MaxSequences: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()

	stream, err := engine.Generate(context.Background(), memwise.Request{Prompt: "Once upon a time", MaxTokens: 64})
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for ev, err := range stream.All() {
		if err != nil {
			log.Fatal(err)
		}
		os.Stdout.Write(ev.Text)
		if ev.Done() {
			fmt.Printf("\n[%s after %d tokens]\n", ev.Finish, ev.GeneratedTokens)
		}
	}
}
