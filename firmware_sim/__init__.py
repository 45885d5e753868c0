"""Simulators: reader devices over real pseudo-terminals and TCP, and a city of vehicles.

Device simulators are built on the drivers' own frame code (gateway.drivers.*.frames), so
they play the device side of exactly the bytes the drivers parse. They are tested against
fixtures decoded by hand from the manuals, never only against themselves."""
