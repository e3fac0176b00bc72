module example.invalid/pause

go 1.25
