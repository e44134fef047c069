// Command hello is the binary the ociimage tests put into images.
package main

import "fmt"

func main() { fmt.Println("hello from a static binary") }
