package convert

import "strings"

// Documents (PDF) cross between the APIs as PartDocument parts: Anthropic
// document blocks, OpenAI Chat file parts and Responses input_file parts
// with inline data, Gemini inlineData/fileData with application/pdf. A PDF
// by URL reaches Anthropic, Gemini and Responses; Chat Completions takes
// only inline data, so a URL there is refused, as is a reference to a
// provider's own file store, which another provider cannot read.

const pdfType = "application/pdf"

// document builds a PDF part from a data URL, an http(s) URL or base64.
func document(filename, dataOrURL string) (Part, error) {
	p := Part{Kind: PartDocument, Text: filename}
	switch {
	case strings.HasPrefix(dataOrURL, "data:"):
		mt, data, ok := parseDataURL(dataOrURL)
		if !ok {
			return p, invalid("file data must be a base64 data URL")
		}
		p.Image = &Image{MediaType: mt, Data: data}
	case strings.HasPrefix(dataOrURL, "https://"), strings.HasPrefix(dataOrURL, "http://"):
		p.Image = &Image{MediaType: pdfType, URL: dataOrURL}
	case dataOrURL == "":
		return p, invalid("a document needs its data (a base64 data URL) or an http(s) URL")
	default:
		p.Image = &Image{MediaType: pdfType, Data: dataOrURL} // bare base64, as some clients send
	}
	if p.Image.MediaType != pdfType {
		return p, invalid("%s documents are not supported for this model (only %s)", p.Image.MediaType, pdfType)
	}
	return p, nil
}

// fileRef refuses a provider-side file id: another provider cannot read it.
func fileRef(id string) error {
	return invalid("file %q is stored at one provider and cannot be read by this model; send the file's data inline", id)
}

func (p *Part) filename() string { return cmpOr(p.Text, "document.pdf") }

func (p *Part) anthropicDocument() obj {
	src := obj{"type": "base64", "media_type": p.Image.MediaType, "data": p.Image.Data}
	if p.Image.URL != "" {
		src = obj{"type": "url", "url": p.Image.URL}
	}
	b := obj{"type": "document", "source": src}
	if p.Text != "" {
		b["title"] = p.Text
	}
	return b
}

func (p *Part) chatFile() (obj, error) {
	if p.Image.URL != "" {
		return nil, invalid("a PDF by URL cannot be sent to this model (Chat Completions takes file data only); send it inline")
	}
	return obj{"type": "file", "file": obj{"filename": p.filename(), "file_data": p.Image.url()}}, nil
}

func (p *Part) responsesFile() obj {
	if p.Image.URL != "" {
		return obj{"type": "input_file", "file_url": p.Image.URL}
	}
	return obj{"type": "input_file", "filename": p.filename(), "file_data": p.Image.url()}
}

func (p *Part) geminiDocument() obj {
	if p.Image.URL != "" {
		return obj{"fileData": obj{"fileUri": p.Image.URL, "mimeType": pdfType}}
	}
	return obj{"inlineData": obj{"mimeType": pdfType, "data": p.Image.Data}}
}
