package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/keyservice/keyservice/client"
)

// The three-line verify of docs/clients.md.
func ExampleClient_Verify() {
	ctx := context.Background()
	presentedKey := os.Getenv("KEY")
	// --- docs/clients.md: Go verify ---
	c, err := client.New(os.Getenv("KEYSERVICE_ADDR"), client.WithToken(os.Getenv("KEYSERVICE_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.Verify(ctx, presentedKey, client.WithScopes("read"))
	switch {
	case err != nil:
		log.Print("no answer: refuse the request (fail closed): ", err)
	case res.Valid:
		fmt.Println("valid key of", res.Key.GetOwner())
	default:
		fmt.Println("refused:", res.Code) // CODE_NOT_FOUND, CODE_REVOKED, CODE_RATE_LIMITED, ...
	}
	// --- end ---
}

// The middleware of docs/clients.md, with the in-process cache.
func ExampleClient_HTTPMiddleware() {
	// --- docs/clients.md: Go middleware ---
	c, err := client.New(os.Getenv("KEYSERVICE_ADDR"),
		client.WithToken(os.Getenv("KEYSERVICE_TOKEN")),
		client.WithCache(0, 0)) // answers kept in process, fed by WatchKeyEvents
	if err != nil {
		log.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := client.KeyFrom(r.Context()) // the key's record; the Authorization header is gone
		fmt.Fprintf(w, "hello, %s\n", key.GetOwner())
	})
	http.Handle("/v1/", c.HTTPMiddleware(client.Require(client.WithScopes("read")))(api))
	log.Fatal(http.ListenAndServe(":8000", nil))
	// --- end ---
}
