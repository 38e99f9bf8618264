package convert

// Images in an answer. Gemini's image models answer with inlineData parts
// (a Part of kind PartImage, streamed as one BlockImage block whose start
// carries the whole image). Each client gets them in its API's form for an
// image in an answer, or a note where it has none:
//
//   - Chat Completions has no image in an assistant message; the relay
//     follows the convention of OpenRouter, LiteLLM and Vercel's gateway,
//     message.images (streamed: delta.images), a list of
//     {"type":"image_url","image_url":{"url":"data:<type>;base64,<data>"}}.
//   - Responses: an image_generation_call output item whose result is the
//     base64 data, the item OpenAI's own image generation answers with.
//   - Anthropic Messages: an assistant message cannot hold an image, so a
//     text block in its place says one was left out (imageOmitted), rather
//     than an answer that silently lacks it.
//
// Images the model thought with (inlineData marked thought) are left out
// for every client: no API has an image among its thinking. Generated
// images are not sent back to the provider on the next turn either: Chat's
// message.images is not read from the history, and a Responses
// image_generation_call input item is skipped.

// chatImage is an image of Chat's message.images or delta.images.
func chatImage(img *Image) obj {
	return obj{"type": "image_url", "image_url": obj{"url": "data:" + img.MediaType + ";base64," + img.Data}}
}

// imageItem is a Responses image_generation_call output item; an empty
// result (the item in progress) is null.
func imageItem(id, status, result string) obj {
	var r any
	if result != "" {
		r = result
	}
	return obj{"id": id, "type": "image_generation_call", "status": status, "result": r}
}

// imageOmitted is the text an Anthropic client gets in place of an image
// in the answer.
func imageOmitted(mediaType string) string {
	return "[image omitted: the model answered with an image (" + mediaType +
		"), which the Anthropic Messages API cannot carry in an answer]"
}

// anthropicAnswerParts is ps with each image replaced by its imageOmitted
// note; ps itself is left as it is.
func anthropicAnswerParts(ps []Part) []Part {
	var out []Part
	for i, p := range ps {
		if p.Kind != PartImage {
			continue
		}
		if out == nil {
			out = append([]Part(nil), ps...)
		}
		out[i] = Part{Kind: PartText, Text: imageOmitted(p.Image.MediaType)}
	}
	if out == nil {
		return ps
	}
	return out
}
