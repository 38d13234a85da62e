package engine

import "errors"

func setGroupNice(int, int) error { return errors.New("not supported on Windows") }
