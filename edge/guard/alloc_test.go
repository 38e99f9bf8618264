package guard

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestInspectAllocations pins what one inspection allocates: nothing,
// when the caller releases the Outcome as the edge does; without Release,
// the Outcome (with its vault and counts), the vault's values when
// something is masked, and the new body when something is rewritten.
// Nothing per text field, per find or per escaped string either way.
// Garbage means garbage collections, and calls that run during one are
// several times slower: most of the guard's p99 (issue 16).
func TestInspectAllocations(t *testing.T) {
	p := benchPolicy(t)
	escaped := []byte(`{"model":"m","messages":[{"role":"user","content":"line one\nphone 13812345678\n\"quoted\" \u4e2d\u6587 13812345678"},` +
		`{"role":"user","content":"id 110101199003071233, again 13812345678"}]}`)
	plain := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("nothing to see here. ", 50) + `"}]}`)
	for _, tc := range []struct {
		name       string
		body       []byte
		masked     int
		unreleased float64 // allocations when the Outcome is not released
	}{
		{"4KiB three turns", benchBody(), 4, 3}, // outcome, vault values, new body
		{"escaped text", escaped, 2, 3},
		{"nothing found", plain, 0, 1}, // the outcome
	} {
		for _, release := range []bool{true, false} {
			want := 0.0
			if !release {
				want = tc.unreleased
			}
			t.Run(fmt.Sprintf("%s/release=%v", tc.name, release), func(t *testing.T) {
				inspect := func() {
					o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", tc.body)
					if err != nil || o.Vault.Len() != tc.masked {
						t.Fatalf("inspect: %v, %d masked, want %d", err, o.Vault.Len(), tc.masked)
					}
					if release {
						o.Release()
					}
				}
				inspect() // fill the pools
				got := testing.AllocsPerRun(200, inspect)
				if raceEnabled {
					// Pools (this package's, regexp's machines) drop a
					// quarter of what is put back under the race
					// detector: there only a gross regression shows; the
					// pin holds without -race (scripts/test.sh runs it so).
					want += 8
				}
				if got > want {
					t.Errorf("Inspect allocates %v times a call, want at most %v (race detector: %v)", got, want, raceEnabled)
				}
				if !raceEnabled && got < want {
					t.Logf("Inspect allocates %v times a call, fewer than pinned (%v): lower the pin", got, want)
				}
			})
		}
	}
}

// TestInspectPooledStateDoesNotLeak: the pooled working memory and the
// released Outcomes carry nothing from one call to the next, whether a
// call failed half way (after rewriting a string), was blocked, or runs at
// the same time as others: each body and each vault is its request's own.
func TestInspectPooledStateDoesNotLeak(t *testing.T) {
	p := compile(t, &Config{Detectors: allDetectors, Actions: map[string]Action{"bank_card": Block}})
	const path = "/v1/chat/completions"
	bodies := [][]byte{
		[]byte(`{"messages":[{"role":"user","content":"call 13812345678"}]}`),
		[]byte(`{"messages":[{"role":"user","content":"mail li.si@example.com or 13912345678"}]}`),
		[]byte(`{"messages":[{"role":"user","content":"id 110101199003071233\nand \"more\""}]}`),
		[]byte(`{"messages":[{"role":"user","content":"nothing"}]}`),
	}
	want := make([]string, len(bodies))
	for i, b := range bodies {
		o, err := p.Inspect(llmapi.OpenAI, path, b)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = string(o.Body)
	}
	// check is the outcome of bodies[i]: its body, and its vault restores
	// the client's text and nothing else.
	check := func(o *Outcome, i int) error {
		if string(o.Body) != want[i] {
			return fmt.Errorf("body %s, want %s", o.Body, want[i])
		}
		if got := o.Vault.Restore(string(o.Body)); o.Vault.Len() > 0 && got != string(bodies[i]) {
			return fmt.Errorf("restored %s, want %s", got, bodies[i])
		}
		return nil
	}
	broken := []byte(`{"messages":[{"role":"user","content":"call 13812345678"},{"content":"x"` + `]}`)
	blocked := []byte(`{"messages":[{"role":"user","content":"13812345678 card 6222021234567894"}]}`)
	for round := 0; round < 3; round++ {
		for i, b := range bodies {
			if _, err := p.Inspect(llmapi.OpenAI, path, broken); err == nil {
				t.Fatal("a broken body was inspected")
			}
			o, err := p.Inspect(llmapi.OpenAI, path, blocked)
			if err != nil || len(o.Blocked) != 1 || string(o.Body) != string(blocked) {
				t.Fatalf("blocked: %v %v %s", err, o.Blocked, o.Body)
			}
			o.Release()
			if o, err = p.Inspect(llmapi.OpenAI, path, b); err != nil {
				t.Fatal(err)
			}
			if err := check(o, i); err != nil {
				t.Fatalf("after a failed and a blocked call: %v", err)
			}
			o.Release()
		}
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for n := 0; n < 200 && err == nil; n++ {
				i := (g + n) % len(bodies)
				o, ierr := p.Inspect(llmapi.OpenAI, path, bodies[i])
				if ierr != nil {
					err = ierr
				} else if err = check(o, i); err == nil {
					o.Release()
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestReleaseWipesValues: a released Outcome's vault keeps none of the
// request's values in the pooled memory, and the next request that gets
// it numbers its own placeholders from 1.
func TestReleaseWipesValues(t *testing.T) {
	p := compile(t, &Config{Detectors: allDetectors})
	o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", []byte(`{"messages":[{"role":"user","content":"call 13812345678"}]}`))
	if err != nil || o.Vault.Len() != 1 {
		t.Fatalf("inspect: %v %v", err, o.Vault)
	}
	v := o.Vault
	o.Release()
	if arena := v.arena[:cap(v.arena)]; bytes.Contains(arena, []byte("13812345678")) || len(v.entries) != 0 {
		t.Fatalf("a released vault still holds %q, %d entries", arena, len(v.entries))
	}
	var n int
	for range 20 { // the pool may hand out another block: ask until it is this one
		o, err = p.Inspect(llmapi.OpenAI, "/v1/chat/completions", []byte(`{"messages":[{"role":"user","content":"call 13912345678"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if o.Vault != v {
			continue
		}
		n++
		if got := o.Vault.Restore("⟦PHONE_1⟧ ⟦PHONE_2⟧"); got != "13912345678 ⟦PHONE_2⟧" || o.Vault.Len() != 1 {
			t.Fatalf("the reused vault restores %q (%d values)", got, o.Vault.Len())
		}
		o.Release()
	}
	if n == 0 && !raceEnabled {
		t.Fatal("the released Outcome was never used again")
	}
}
