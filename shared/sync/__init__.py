"""The pure core: what a file's version is, and what to do about a path given the last-synced
state and the listings. One-way (`one_way`), two-way (`two_way`), the rules turning paths into
object keys (`keys`), and the listing model (`model`).

No I/O, no clock. May import: the standard library, `shared.errors` and `shared.contracts`
(tests/unit/test_layers.py imports it in a clean interpreter and checks nothing else loads).
The scanner calls these same functions, chunk by chunk, that the table tests call.
"""
