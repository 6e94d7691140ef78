package loopid

import "slices"

// OneShots is the collection name's instrument part for one-shots (drum hits): their
// collection is Collection(OneShots), filled by the bundle's one-shot encoder, and every
// row records its Kind.
const OneShots = "oneshot"

// UnknownKind is stored for a one-shot whose name does not say its kind and whose audio
// the kind classifier could not tell (or that was ingested without one).
const UnknownKind = "unknown"

// Kinds are the one-shot kinds, in the order the kind classifier scores them.
var Kinds = []string{"kick", "snare", "clap", "rim", "hat", "open_hat", "ride", "crash", "tom", "perc"}

// ValidKind reports whether s is one of Kinds (UnknownKind is not: nothing asks for it).
func ValidKind(s string) bool { return slices.Contains(Kinds, s) }

// kindWords are the words of file and folder names that say a one-shot's kind.
var kindWords = map[string]string{
	"kick": "kick", "kicks": "kick", "bd": "kick", "kck": "kick", "bassdrum": "kick",
	"snare": "snare", "snares": "snare", "sd": "snare", "snr": "snare",
	"clap": "clap", "claps": "clap", "cp": "clap", "handclap": "clap",
	"rim": "rim", "rims": "rim", "rimshot": "rim", "rs": "rim", "sidestick": "rim", "stick": "rim",
	"hh": "hat", "hat": "hat", "hats": "hat", "hihat": "hat", "hihats": "hat", "chh": "hat", "ch": "hat", "closedhat": "hat",
	"oh": "open_hat", "ohh": "open_hat", "openhat": "open_hat", "open_hat": "open_hat",
	"ride": "ride", "rides": "ride", "rd": "ride",
	"crash": "crash", "crashes": "crash", "cr": "crash", "cymbal": "crash", "splash": "crash", "china": "crash",
	"tom": "tom", "toms": "tom", "lt": "tom", "mt": "tom", "ht": "tom", "floortom": "tom",
	"perc": "perc", "percussion": "perc", "shaker": "perc", "cowbell": "perc", "conga": "perc", "bongo": "perc",
	"tamb": "perc", "tambourine": "perc", "clave": "perc", "block": "perc", "triangle": "perc", "guiro": "perc",
}

// KindWord is the kind a name's lower-case word says ("bd" -> kick, "hh" -> hat), or "".
// An "open" word before "hat"/"hh" makes an open hat: KindOfWords reads pairs.
func KindWord(w string) string { return kindWords[w] }

// KindOfWords is the one kind a name's words say, or "" when they say none or several
// ("open hat" and "open hh" are open hats; "closed hat" a hat).
func KindOfWords(words []string) string {
	found := ""
	for i, w := range words {
		k := kindWords[w]
		if k == "hat" && i > 0 && words[i-1] == "open" {
			k = "open_hat"
		}
		if k == "" {
			continue
		}
		if found != "" && found != k {
			if found == "hat" && k == "open_hat" || found == "open_hat" && k == "hat" {
				found = "open_hat"
				continue
			}
			return ""
		}
		found = k
	}
	return found
}
