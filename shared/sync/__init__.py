"""The pure core: what a file's version is (`model`: listed as `SourceEntry`, indexed as
`IndexRecord`, both `Versioned`; the one place a version becomes the wire's `FileVersion`), and
what to do about a path given the index and the listings: one-way (`one_way`), two-way
(`two_way`), what both share (`rules`: `Action`, the one mass-delete rule), and the rules
turning paths into object keys (`keys`).

No I/O, no clock. May import: the standard library, `shared.errors` and `shared.contracts`
(tests/unit/test_pure_core.py imports it in a clean interpreter and checks nothing else loads).
The scanner calls these same functions, chunk by chunk, that the table tests call.
"""
