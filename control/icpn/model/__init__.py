"""Reference model of the icpn data plane's decisions (sketch, digests, segment lists),
bit-exact with BMv2 and fast enough for traffic studies of millions of packets."""
