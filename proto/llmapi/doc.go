// Package llmapi is the vocabulary of the provider APIs Strait serves, the
// one place the edge and the relay learn it, so the two cannot read one
// request two ways: OpenAI (Chat Completions, Responses, embeddings, files,
// …), Anthropic (Messages) and Gemini (generateContent). It holds
//
//   - the family (Family, Families) and its detection from the path and
//     headers (Detect, Guess);
//   - the model of a request: Parse, the one parser of body and path both
//     sides use, GeminiModelPath, and MemberSpan/ReplaceModel for rewriting
//     one top-level member byte-exactly;
//   - the endpoint classes allow-lists name (EndpointClass);
//   - server-sent-event framing (EventEnd, EventData, Reader) and Gemini's
//     streamed JSON array (ArrayReader);
//   - the credential locations (CredentialHeaders, ClientKey, SetKey,
//     TakeQueryKey);
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
//  2. model.go: where its model is, if not the body's top-level "model";
//  3. endpoint.go: its endpoint classes;
//  4. edge/apierr (kinds table and Body) and relay/convert/errors.go: its
//     error body;
//  5. edge/usage: its usage object and how it normalises;
//  6. relay/upstream: a provider Kind for it and anything its auth needs
//     beyond SetKey; relay/dispatch/listing.go: its listing entry shape;
//  7. relay/convert: a Dialect with request and response codecs, if
//     requests should convert to and from it.
package llmapi
