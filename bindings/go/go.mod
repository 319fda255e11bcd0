module memwise.dev/memwise

go 1.23
