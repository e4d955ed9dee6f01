package apikey_test

import (
	"fmt"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
)

func ExampleRateLimit_Valid() {
	fmt.Println(apikey.RateLimit{Limit: 1000, Period: time.Minute, Burst: 1000}.Valid())
	fmt.Println(apikey.RateLimit{Limit: 1000, Period: time.Minute}.Valid())
	// Output:
	// <nil>
	// burst must be between 1 and 1000000000, got 0
}
