package llmapi

import (
	"net/http"
	"strings"
)

// Endpoint classes: what a request does with the provider account behind
// the shared key. Only EndpointInference is stateless from a tenant's point
// of view; every other class reads or changes what the account holds
// (files, batches, tuned models, stored answers), which all the clients of
// a provider key would otherwise share. The edge allows the other classes
// per client key, the relay per config; both ask EndpointClass.
const (
	// EndpointInference: generate, embed and count tokens, list and get
	// models. Always allowed.
	EndpointInference = "inference"
	// EndpointFiles: OpenAI /v1/files and /v1/uploads, Anthropic /v1/files,
	// Gemini files and uploads.
	EndpointFiles = "files"
	// EndpointBatches: OpenAI /v1/batches, Anthropic /v1/messages/batches,
	// Gemini batches and :batchGenerateContent.
	EndpointBatches = "batches"
	// EndpointFineTuning: OpenAI /v1/fine_tuning and DELETE /v1/models/{id},
	// Gemini tunedModels.
	EndpointFineTuning = "fine_tuning"
	// EndpointStored: stored chat completions and responses (anything
	// under /v1/chat/completions/{id} or /v1/responses/{id}),
	// conversations, Gemini cachedContents.
	EndpointStored = "stored"
	// EndpointAssistants: OpenAI assistants, threads and vector stores.
	EndpointAssistants = "assistants"
	// EndpointMedia: OpenAI images, audio and moderations, Gemini :predict;
	// stateless, but no text inference.
	EndpointMedia = "media"
	// EndpointAll, in an allow-list, allows every class and paths that
	// belong to none.
	EndpointAll = "all"
)

// EndpointClasses are the names an allow-list may hold.
var EndpointClasses = []string{EndpointInference, EndpointFiles, EndpointBatches, EndpointFineTuning,
	EndpointStored, EndpointAssistants, EndpointMedia, EndpointAll}

// EndpointClass classifies a request of an API family ("openai",
// "anthropic", "gemini") by method and path (without any /{provider}
// prefix). It returns "" for a path no class knows: only EndpointAll
// allows those.
func EndpointClass(family, method, path string) string {
	switch family {
	case "gemini":
		return geminiEndpoint(method, path)
	case "anthropic":
		return anthropicEndpoint(method, path)
	}
	return openAIEndpoint(method, path)
}

// AllowsEndpoint reports whether allow (class names) admits class.
// Inference is always admitted; "" only through EndpointAll.
func AllowsEndpoint(allow []string, class string) bool {
	if class == EndpointInference {
		return true
	}
	for _, a := range allow {
		if a == EndpointAll || (a == class && class != "") {
			return true
		}
	}
	return false
}

// under reports p equal to prefix or below it.
func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func openAIEndpoint(method, p string) string {
	post, get := method == http.MethodPost, method == http.MethodGet
	switch {
	case p == "/v1/chat/completions" || p == "/v1/completions" || p == "/v1/embeddings" ||
		p == "/v1/responses" || p == "/v1/responses/input_tokens":
		if post {
			return EndpointInference
		}
		return EndpointStored // GET /v1/chat/completions lists stored completions
	case under(p, "/v1/chat/completions"), under(p, "/v1/responses"), under(p, "/v1/conversations"):
		return EndpointStored
	case p == "/v1/models" && get:
		return EndpointInference
	case strings.HasPrefix(p, "/v1/models/") && !strings.Contains(p[len("/v1/models/"):], "/"):
		if get {
			return EndpointInference
		}
		return EndpointFineTuning // DELETE /v1/models/{fine-tuned model}
	case under(p, "/v1/files"), under(p, "/v1/uploads"):
		return EndpointFiles
	case under(p, "/v1/batches"):
		return EndpointBatches
	case under(p, "/v1/fine_tuning"):
		return EndpointFineTuning
	case under(p, "/v1/assistants"), under(p, "/v1/threads"), under(p, "/v1/vector_stores"):
		return EndpointAssistants
	case under(p, "/v1/images"), under(p, "/v1/audio"), p == "/v1/moderations":
		return EndpointMedia
	}
	return ""
}

func anthropicEndpoint(method, p string) string {
	post, get := method == http.MethodPost, method == http.MethodGet
	switch {
	case post && (p == "/v1/messages" || p == "/v1/messages/count_tokens" || p == "/v1/complete"):
		return EndpointInference
	case get && (p == "/v1/models" || strings.HasPrefix(p, "/v1/models/") && !strings.Contains(p[len("/v1/models/"):], "/")):
		return EndpointInference
	case under(p, "/v1/messages/batches"):
		return EndpointBatches
	case under(p, "/v1/files"):
		return EndpointFiles
	}
	return ""
}

// geminiInference are the model methods that only compute.
var geminiInference = map[string]bool{"generateContent": true, "streamGenerateContent": true, "countTokens": true,
	"embedContent": true, "batchEmbedContents": true}

func geminiEndpoint(method, p string) string {
	if _, m, ok := GeminiModelPath(p); ok {
		switch {
		case m == "" && method == http.MethodGet, geminiInference[m] && method == http.MethodPost:
			return EndpointInference
		case m == "batchGenerateContent" || m == "asyncBatchEmbedContent":
			return EndpointBatches
		case m == "predict":
			return EndpointMedia
		}
		return ""
	}
	rest, ok := geminiRest(p)
	switch {
	case !ok:
		return ""
	case rest == "models" && method == http.MethodGet:
		return EndpointInference
	case under(rest, "files"):
		return EndpointFiles
	case under(rest, "batches"):
		return EndpointBatches
	case under(rest, "tunedModels"):
		return EndpointFineTuning
	case under(rest, "cachedContents"):
		return EndpointStored
	}
	return ""
}

// geminiRest strips /upload and the API version from a Gemini path.
func geminiRest(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/upload")
	for _, v := range []string{"/v1beta/", "/v1/", "/v1alpha/"} {
		if rest, ok := strings.CutPrefix(p, v); ok {
			return rest, true
		}
	}
	return "", false
}
