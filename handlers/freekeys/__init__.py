"""Free keys through ad checkpoints (docs/free-keys.md).

``api``: the vendor's settings, the funnel, the loader's ``POST /api/loader/getkey``;
``page``: the player's get-key page, the returns from checkpoints, LootLabs postbacks;
``links``: the machine's opaque id and the page's URL; ``providers/``: one module per ad
provider (and Turnstile) behind one interface, the only outbound calls."""
