package usage

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

var usageSeeds = []string{
	`{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}}`,
	`{"input_tokens":9,"cache_read_input_tokens":2,"output_tokens":3}`,
	`{"input_tokens":9,"cache_creation_input_tokens":5,"cache_read_input_tokens":2,"output_tokens":3,` +
		`"cache_creation":{"ephemeral_5m_input_tokens":5},"service_tier":"standard","server_tool_use":null}`,
	`{"input_tokens":20,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,` +
		`"output_tokens_details":{"reasoning_tokens":5},"total_tokens":27}`,
	`{"prompt_tokens":1,"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0},"prompt_tokens_details":null}`,
	` { "prompt_tokens" : -4 , "completion_tokens" : 999999999999999999 } `,
	`{"prompt_tokens":1,"prompt_tokens":2}`,
	`{}`,
	// What the decoder reads otherwise, or refuses: readUsage gives up.
	`{"Prompt_Tokens":5}`,
	`{"prompt_tokens":1.5}`,
	`{"prompt_tokens":1e3}`,
	`{"prompt_tokens":"5"}`,
	`{"prompt_tokens":9999999999999999999}`,
	`{"prompt_tokens_details":3}`,
	`{"prompt_\u0074okens":5}`,
	`{"ſrompt_tokens":5}`,
	`{"PROMPT_TOKENS_DETAILS":{"cached_tokens":3}}`,
	`{"prompt_tokens_details":{"CACHED_TOKENS":3}}`,
}

// TestReadUsage: the seeds read as the decoder reads them, and the common
// usage objects (the first eight) without it.
func TestReadUsage(t *testing.T) {
	for i, s := range usageSeeds {
		var w llmapi.WireUsage
		ok := readUsage([]byte(s), &w)
		if want := i < 8; ok != want {
			t.Errorf("%s: readUsage ok %v, want %v", s, ok, want)
		}
		checkReadUsage(t, []byte(s))
	}
}

func FuzzReadUsage(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkReadUsage)
}

// checkReadUsage fails when readUsage accepts an object and reads it in
// another way than json.Unmarshal.
func checkReadUsage(t *testing.T, b []byte) {
	if !json.Valid(b) || !strings.HasPrefix(strings.TrimLeft(string(b), " \t\r\n"), "{") {
		return
	}
	var fast llmapi.WireUsage
	if !readUsage(b, &fast) {
		return
	}
	var slow llmapi.WireUsage
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("%s: readUsage read %+v, the decoder fails: %v", b, fast, err)
	}
	if fast != slow {
		t.Fatalf("%s: readUsage read %+v, the decoder %+v", b, fast, slow)
	}
}

// TestUsageShape: readUsage knows every field of llmapi.WireUsage, so a
// field added there cannot be missed here.
func TestUsageShape(t *testing.T) {
	var want []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous:
				walk(f.Type, prefix)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+name+".")
			default:
				want = append(want, prefix+name)
			}
		}
	}
	walk(reflect.TypeFor[llmapi.WireUsage](), "")
	var got []string
	var list func(*usageObject, string)
	list = func(o *usageObject, prefix string) {
		for _, f := range o.ints {
			got = append(got, prefix+f.key)
		}
		for _, c := range o.objects {
			list(c.obj, prefix+c.key+".")
		}
	}
	list(wireUsage, "")
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("readUsage knows %v\nllmapi.WireUsage has %v", got, want)
	}
	// Each field's pointer is the field its key names: a usage with every
	// field set to a distinct number reads as the decoder reads it.
	var b strings.Builder
	b.WriteString("{")
	objects := map[string][]string{}
	for i, path := range want {
		obj, key, nested := strings.Cut(path, ".")
		if nested {
			objects[obj] = append(objects[obj], `"`+key+`":`+strconv.Itoa(i+1))
			continue
		}
		b.WriteString(`"` + obj + `":` + strconv.Itoa(i+1) + `,`)
	}
	for obj, members := range objects {
		b.WriteString(`"` + obj + `":{` + strings.Join(members, ",") + `},`)
	}
	s := strings.TrimSuffix(b.String(), ",") + "}"
	var fast, slow llmapi.WireUsage
	if !readUsage([]byte(s), &fast) || json.Unmarshal([]byte(s), &slow) != nil || fast != slow {
		t.Fatalf("%s: readUsage %+v, decoder %+v", s, fast, slow)
	}
}

// TestUnaryUsageAllocatesNothing: metering a unary answer's body reads its
// usage without allocating.
func TestUnaryUsageAllocatesNothing(t *testing.T) {
	body := []byte(unaryOpenAI)
	n := testing.AllocsPerRun(100, func() {
		m := Meter{family: llmapi.OpenAI}
		m.observe(body)
		if m.u.Input != 9 || m.u.Output != 3 {
			t.Fatalf("usage %+v, want 9 in, 3 out", m.u)
		}
	})
	if raceEnabled {
		t.Logf("%v allocations per body; not checked under the race detector, which allocates on its own", n)
	} else if n != 0 {
		t.Errorf("metering a unary answer allocates %v times, want 0", n)
	}
}
