// reputation: verdicts (allow / block / unknown with category, source, rule) from the embedded
// store or Redis, feed import, and the pure policy function. Not built yet: its issue adds it;
// proxy/server already routes every request through one decision point where it plugs in.
#pragma once
