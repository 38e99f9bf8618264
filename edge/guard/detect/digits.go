package detect

import "github.com/strait/strait/edge/guard/internal/chars"

// findDigits scans maximal digit runs once for ID numbers, bank cards,
// mobile numbers (also in their usual grouped spellings: 138 1234 5678,
// 6222-0212-3456-7890, 110101 19900307 1234), IPv4 addresses and passport
// numbers (whose digits follow one or two letters).
func findDigits[T chars.Text](s *Set, dst []Match, text T) []Match {
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i = nextDigit(text, i+1)
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if m, ok := runToken(s, text, i, j); ok {
			dst = append(dst, m)
			i = m.End
			continue
		}
		i = j
	}
	return dst
}

// nextDigit is the index of the first ASCII digit in text[i:], or
// len(text). Eight bytes are looked at together: prose has few digits.
func nextDigit[T chars.Text](text T, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(text); i += 8 {
		x := uint64(text[i]) | uint64(text[i+1])<<8 | uint64(text[i+2])<<16 | uint64(text[i+3])<<24 |
			uint64(text[i+4])<<32 | uint64(text[i+5])<<40 | uint64(text[i+6])<<48 | uint64(text[i+7])<<56
		// A byte b with '0'-1 < b < '9'+1 (Hacker's Delight; bytes from
		// 0x80 on are excluded by ^x).
		low := x &^ highs
		if (ones*(127+'9'+1)-low)&^x&(low+ones*(127-('0'-1)))&highs != 0 {
			break
		}
	}
	for ; i < len(text) && !isDigit(text[i]); i++ {
	}
	return i
}

// runToken judges the token around the digit run text[i:j].
func runToken[T chars.Text](s *Set, text T, i, j int) (Match, bool) {
	if s.passport {
		if m, ok := passportAt(text, i, j); ok {
			return m, true
		}
	}
	if !boundaryBefore(text, i) {
		return Match{}, false
	}
	afterDot := i > 0 && text[i-1] == '.' // an address does not follow a dot
	if s.ipv4 && !afterDot && j < len(text) && text[j] == '.' {
		if end, ok := ipv4At(text, i); ok {
			return mk(i, end, IPv4), true
		}
	}
	if s.digits && !(afterDot && i >= 2 && isDigit(text[i-2])) { // nor a number the fraction of another
		return digitToken(s, text, i, j)
	}
	return Match{}, false
}

// digitToken judges the token starting with the digit run text[i:j].
func digitToken[T chars.Text](s *Set, text T, i, j int) (Match, bool) {
	if j < len(text) && (text[j] == ' ' || text[j] == '-') && j+1 < len(text) && isDigit(text[j+1]) {
		if m, ok := grouped(s, text, i, j); ok {
			return m, true
		}
	}
	n := j - i
	run := text[i:j]
	if s.id && n == 17 && j < len(text) && text[j]|0x20 == 'x' && boundaryAfter(text, j+1) && validID(text[i:j+1]) {
		return mk(i, j+1, CNIDCard), true
	}
	if !boundaryAfter(text, j) || decimalNeighbour(text, i, j) {
		return Match{}, false
	}
	switch {
	case s.id && n == 18 && validID(run):
		return mk(i, j, CNIDCard), true
	case s.mobile && n == 11 && validMobile(run):
		return mk(i, j, CNMobile), true
	case s.mobile && n == 13 && i > 0 && text[i-1] == '+' && run[0] == '8' && run[1] == '6' && validMobile(run[2:]):
		return mk(i+2, j, CNMobile), true // +8613812345678: the number without the country code
	case s.card && n >= 16 && n <= 19 && validCard(run):
		return mk(i, j, BankCard), true
	}
	return Match{}, false
}

// grouped reads a run of digit groups joined by one kind of separator
// (space or hyphen) and judges the digits together.
func grouped[T chars.Text](s *Set, text T, i, j int) (Match, bool) {
	sep := text[j]
	var buf [25]byte // the digits, and room for a final X
	var lens [6]int
	digits, groups, end := 0, 0, i
	for k := i; groups < len(lens); {
		g := k
		for k < len(text) && isDigit(text[k]) && digits < len(buf) {
			buf[digits] = text[k]
			digits++
			k++
		}
		if k == g || k < len(text) && isDigit(text[k]) {
			return Match{}, false
		}
		lens[groups] = k - g
		groups++
		end = k
		if k+1 < len(text) && text[k] == sep && isDigit(text[k+1]) {
			k++
			continue
		}
		break
	}
	d := buf[:digits]
	switch {
	case s.id && groups == 3 && lens[0] == 6 && lens[1] == 8 && lens[2] == 3 && end < len(text) && text[end]|0x20 == 'x' &&
		boundaryAfter(text, end+1) && validID(append(d, 'X')):
		return mk(i, end+1, CNIDCard), true
	case !boundaryAfter(text, end) || decimalNeighbour(text, i, end):
		return Match{}, false
	case s.mobile && groups == 3 && lens[0] == 3 && lens[1] == 4 && lens[2] == 4 && validMobile(d):
		return mk(i, end, CNMobile), true
	case s.id && groups == 3 && lens[0] == 6 && lens[1] == 8 && lens[2] == 4 && validID(d):
		return mk(i, end, CNIDCard), true
	case s.card && groups >= 4 && lens[0] == 4 && digits >= 16 && digits <= 19 && fours(lens[:groups-1]) && validCard(d):
		return mk(i, end, BankCard), true
	}
	return Match{}, false
}

func fours(lens []int) bool {
	for _, n := range lens {
		if n != 4 {
			return false
		}
	}
	return true
}

// mobilePrefixes marks the assigned three-digit prefixes of mainland mobile
// numbers (MIIT numbering plan: 13x, 14x data and IoT-voice, 15x, 16x, 17x,
// 18x, 19x, without the unassigned ones).
var mobilePrefixes = func() (p [100]bool) {
	for _, n := range []int{30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 56, 57, 58, 59,
		62, 65, 66, 67, 70, 71, 72, 73, 74, 75, 76, 77, 78, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 95, 96, 97, 98, 99} {
		p[n] = true
	}
	return p
}()

// validMobile: 11 digits, 1 and an assigned prefix.
func validMobile[T chars.Text](d T) bool {
	return len(d) == 11 && d[0] == '1' && mobilePrefixes[int(d[1]-'0')*10+int(d[2]-'0')]
}

// idRegions are the first two digits of resident ID numbers: provinces,
// plus 71/81/82/83 for Taiwan, Hong Kong and Macao residents.
var idRegions = func() (p [100]bool) {
	for _, n := range []int{11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
		50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83} {
		p[n] = true
	}
	return p
}()

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// validID checks an 18-character resident ID number (GB 11643): region,
// a real birth date from 1900 on, and the ISO 7064 MOD 11-2 check digit
// (X or x).
func validID[T chars.Text](d T) bool {
	if len(d) != 18 || !idRegions[int(d[0]-'0')*10+int(d[1]-'0')] {
		return false
	}
	num := func(from, to int) int {
		n := 0
		for k := from; k < to; k++ {
			n = n*10 + int(d[k]-'0')
		}
		return n
	}
	y, m, day := num(6, 10), num(10, 12), num(12, 14)
	if y < 1900 || y > 2099 || m < 1 || m > 12 || day < 1 || day > daysIn(y, m) {
		return false
	}
	sum := 0
	for k, w := range idWeights {
		sum += int(d[k]-'0') * w
	}
	check := d[17]
	if check == 'x' {
		check = 'X'
	}
	return "10X98765432"[sum%11] == check
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// validCard checks a 16–19 digit card number: an issuer prefix of a scheme
// that issues such numbers (UnionPay 62, Visa 4, Mastercard 51–55 and
// 2221–2720, JCB 3528–3589, Discover/RuPay and Chinese banks' 60 and 65,
// old domestic 9558) and the Luhn check.
func validCard[T chars.Text](d T) bool {
	if len(d) < 16 || len(d) > 19 || !cardIssuer(d) {
		return false
	}
	sum := 0
	for k := 0; k < len(d); k++ {
		n := int(d[len(d)-1-k] - '0')
		if k%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

func cardIssuer[T chars.Text](d T) bool {
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4', p2 >= 51 && p2 <= 55, p2 == 60, p2 == 62, p2 == 65:
		return true
	case p4 >= 2221 && p4 <= 2720, p4 >= 3528 && p4 <= 3589, p4 == 9558:
		return true
	}
	return false
}
