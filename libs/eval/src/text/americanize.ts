// Stanford CoreNLP's Americanize (as used by PTBLexer when `americanize` is on): a fixed British→American
// table plus a few patterns. It is case-sensitive and runs before lowercasing, so "Grey" stays "grey" while
// "grey" becomes "gray".

const PAIRS = `anaesthetic anesthetic analogue analog analogues analogs analyse analyze analysed analyzed analysing analyzing
armoured armored cancelled canceled cancelling canceling candour candor capitalise capitalize capitalised capitalized
capitalisation capitalization centre center chimaeric chimeric clamour clamor coloured colored colouring coloring
colourful colorful defence defense Defence Defense discolour discolor discolours discolors discoloured discolored
discolouring discoloring encyclopaedia encyclopedia endeavour endeavor endeavours endeavors endeavoured endeavored
endeavouring endeavoring fervour fervor favour favor favours favors favoured favored favouring favoring favourite favorite
favourites favorites fibre fiber fibres fibers finalise finalize finalised finalized finalising finalizing flavour flavor
flavours flavors flavoured flavored flavouring flavoring glamour glamour grey gray harbour harbor harbours harbors
homologue homolog homologues homologs honour honor honours honors honoured honored honouring honoring honourable honorable
humour humor humours humors humoured humored humouring humoring kerb curb labelled labeled labelling labeling labour labor
Labour Labor labours labors laboured labored labouring laboring leant leaned learnt learned localise localize localised
localized manoeuvre maneuver manoeuvres maneuvers maximise maximize maximised maximized maximising maximizing meagre meager
minimise minimize minimised minimized minimising minimizing modernise modernize modernised modernized modernising
modernizing misdemeanour misdemeanor misdemeanours misdemeanors neighbour neighbor neighbours neighbors neighbourhood
neighborhood neighbourhoods neighborhoods oestrogen estrogen oestrogens estrogens organisation organization organisations
organizations penalise penalize penalised penalized popularise popularize popularised popularized popularises popularizes
popularising popularizing practise practice practised practiced pressurise pressurize pressurised pressurized pressurises
pressurizes pressurising pressurizing realise realize realised realized realising realizing realises realizes recognise
recognize recognised recognized recognising recognizing recognises recognizes rumoured rumored rumouring rumoring savour
savor savours savors savoured savored savouring savoring splendour splendor splendours splendors theatre theater theatres
theaters titre titer titres titers travelled traveled travelling traveling`.split(/\s+/);

const MAPPING = new Map<string, string>();
for (let i = 0; i < PAIRS.length; i += 2) MAPPING.set(PAIRS[i], PAIRS[i + 1]);

const TIMEX = new Map<string, string>(
  'january february april june july august september october november december monday tuesday wednesday thursday friday saturday sunday'
    .split(' ')
    .map((w) => [w, w[0].toUpperCase() + w.slice(1)]),
);

const OUR_EXCEPTIONS = new RegExp(
  'abatjour|beflour|bonjour|calambour|carrefour|cornflour|contour|de[tv]our|dortour|dyvour|downpour|giaour|glamour|holour|inpour|outpour|pandour|paramour|pompadour|recontour|repour|ryeflour|sompnour|tambour|troubadour|tregetour|velour',
);
const PATTERNS: Array<{ pattern: RegExp; replacement: string; except?: RegExp }> = [
  { pattern: /haem(at)?o/g, replacement: 'hem$1o' },
  { pattern: /aemia$/g, replacement: 'emia' },
  { pattern: /([lL])eukaem/g, replacement: '$1eukem' },
  { pattern: /programme(s?)$/g, replacement: 'program$1' },
  { pattern: /^([a-z]{3,})our(s?)$/g, replacement: '$1or$2', except: OUR_EXCEPTIONS },
];

/** British → American spelling of one token, as CoreNLP's `Americanize.americanize(word)`. */
export function americanize(word: string): string {
  if (word.length < 4) return word;
  const timex = TIMEX.get(word);
  if (timex !== undefined) return timex;
  const mapped = MAPPING.get(word);
  if (mapped !== undefined) return mapped;
  if (word.length < 6) return word;
  for (const { pattern, replacement, except } of PATTERNS) {
    pattern.lastIndex = 0;
    if (!pattern.test(word)) continue;
    if (except?.test(word)) continue;
    pattern.lastIndex = 0;
    return word.replace(pattern, replacement);
  }
  return word;
}
