module example.invalid/relay

go 1.25
