// Package llmapi is the vocabulary of the provider APIs Strait serves, the
// one place the edge and the relay learn it, so the two cannot read one
// request two ways: OpenAI (Chat Completions, Responses, embeddings, files,
// …), Anthropic (Messages) and Gemini (generateContent). It holds
//
//   - the family (Family, Families) and its detection from the path and
//     headers (Detect, Guess); the generation dialects (Dialect: Chat
//     Completions, Responses, Messages, generateContent) and which one a
//     request speaks (ClientDialect, Family.Dialect);
//   - the model of a request: Parse, the one parser of body and path both
//     sides use, GeminiModelPath, and MemberSpan/ReplaceModel for rewriting
//     one top-level member byte-exactly;
//   - the endpoint classes allow-lists name (EndpointClass);
//   - server-sent-event framing (EventEnd, EventData, Reader) and Gemini's
//     streamed JSON array (ArrayReader);
//   - provider usage objects and their normalisation into one record
//     (Usage; ChatUsage, ResponsesUsage, AnthropicUsage, GeminiUsage,
//     WireUsage);
//   - the credential locations (CredentialHeaders, ClientKey, SetKey,
//     TakeQueryKey);
//   - the error body each family's SDK parses (ErrorBody, ErrorEvent);
//   - the families' SSE keep-alives and model-listing members (Family.Ping,
//     Family.ListKey).
//
// It imports only the standard library; the dependency test in
// cmd/internal keeps it that way.
//
// To add a family, touch:
//
//  1. family.go: a constant, its place in Families, its spec (name, key
//     header, keep-alive, listing member), and its path rules in Detect
//     (and Guess, if its SDK sends a credential of its own);
//  2. dialect.go: its generation dialect (a constant, Dialects,
//     ClientDialect, Family.Dialect, Dialect.Family);
//  3. model.go: where its model is, if not the body's top-level "model";
//  4. endpoint.go: its endpoint classes;
//  5. errors.go: its error body; and the name it gives each error kind in
//     the kinds tables of edge/apierr and relay/convert/errors.go;
//  6. usage.go: its usage object and Normal; edge/usage reads it from the
//     responses (the message union and Meter.observe);
//  7. relay/upstream: a provider Kind (registry.go) and anything its auth
//     needs beyond SetKey; relay/dispatch/listing.go: its listing entry;
//  8. relay/convert: request and response codecs for its dialect, if
//     requests should convert to and from it.
package llmapi
