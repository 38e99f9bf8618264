package quictun

// zstdDict1 is the raw zstd dictionary of the "zstd1" stream compression
// (alpnZstd1): what small tunnel writes are matched against, so that an SSE
// event compresses on its own, without the previous event. It is samples of
// the streams the tunnel carries: request and response headers as proto
// encodes them, request bodies, and the streaming events of the three API
// families, most frequent last (zstd codes near matches in fewer bits).
//
// The bytes are part of the wire format: both ends must hold the same ones.
// Never edit this string; a better dictionary is a new constant under a new
// ALPN token, offered before this one.
const zstdDict1 = "" +
	"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n" +
	"User-Agent: OpenAI/Python 1.54.0\r\nX-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.54.0\r\n" +
	"X-Stainless-Runtime: CPython\r\nAnthropic-Version: 2023-06-01\r\nAnthropic-Beta: prompt-caching-2024-07-31\r\n" +
	"Content-Length\x10application/json\x0cContent-Type\x0dAccept-Encoding\x04gzip\x0aUser-Agent\x06Accept" +
	"\x11text/event-stream\x0dCache-Control\x08no-cache\x0aConnection\x0akeep-alive\x11X-Accel-Buffering\x02no" +
	"\x0cX-Request-Id\x0arequest-id\x0eopenai-version\x0a2020-10-01\x13openai-processing-ms" +
	"\x1ex-ratelimit-remaining-requests\x1cx-ratelimit-remaining-tokens\x1aanthropic-ratelimit-requests-remaining" +
	"\x17text/event-stream; charset=utf-8\x1fapplication/json; charset=UTF-8" +
	`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Hello"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":1024}` +
	`{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"You are a helpful assistant.","messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"stream":true}` +
	`{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"temperature":0.7,"maxOutputTokens":1024}}` +
	`{"id":"chatcmpl-","object":"chat.completion","created":1733400000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_"}` +
	`{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}` +
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null," +
	"\"usage\":{\"input_tokens\":28,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n" +
	"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" the\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}]," +
	"\"usageMetadata\": {\"promptTokenCount\": 15,\"candidatesTokenCount\": 5,\"totalTokenCount\": 20,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 15}]}," +
	"\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"\"}\r\n\r\n" +
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" and\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}]," +
	"\"usageMetadata\":{\"promptTokenCount\":15,\"candidatesTokenCount\":5,\"totalTokenCount\":20,\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":15}]}," +
	"\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"\"}\n\n" +
	"data: {\"id\":\"chatcmpl-\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_\"," +
	"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"\"}\n\n" +
	"data: {\"id\":\"chatcmpl-\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_\"," +
	"\"choices\":[],\"usage\":{\"prompt_tokens\":32,\"completion_tokens\":5,\"total_tokens\":37,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0}," +
	"\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n" +
	"data: [DONE]\n\n" +
	"data: {\"id\":\"chatcmpl-\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_\"," +
	"\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" the\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"\"}\r\n\r\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the\"}}\n\n" +
	"data: {\"id\":\"chatcmpl-\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"gpt-4o-mini\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_\"," +
	"\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
