package harness

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// DecodeQR reads the QR code in img, as a phone's camera would.
func DecodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	// The finder-pattern search first, as for a photo; gozxing's misses
	// some codes that are whole and clean, so then as a pure code (one
	// upright code with its quiet zone, which a screenshot is).
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		var err2 error
		if res, err2 = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}); err2 != nil {
			return "", fmt.Errorf("decoding the QR code: %w; as a pure code: %v", err, err2)
		}
	}
	return res.GetText(), nil
}

// TerminalQRImage turns a QR code printed with half blocks, two modules
// a character cell (lit: a light module, blank: a dark one, as on a
// terminal with a dark background), into an image of scale pixels a
// module.
func TerminalQRImage(text string, scale int) (image.Image, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, errors.New("no QR code printed")
	}
	width := len([]rune(lines[0]))
	height := 2 * len(lines)
	// A code of odd height ends in a line of upper halves: its lower
	// half is the terminal's background, not part of the code, and
	// left dark it is a bar under the quiet zone that the decoder
	// takes for the code's edge.
	if strings.Trim(lines[len(lines)-1], "▀") == "" {
		height--
	}
	img := image.NewGray(image.Rect(0, 0, width*scale, height*scale))
	for row, line := range lines {
		cells := []rune(line)
		if len(cells) != width {
			return nil, fmt.Errorf("line %d has %d cells, the first has %d", row+1, len(cells), width)
		}
		for x, c := range cells {
			var top, bottom bool // light
			switch c {
			case '█':
				top, bottom = true, true
			case '▀':
				top = true
			case '▄':
				bottom = true
			case ' ':
			default:
				return nil, fmt.Errorf("line %d: %q is not a half block", row+1, c)
			}
			for i, light := range []bool{top, bottom} {
				v := color.Gray{}
				if light {
					v.Y = 255
				}
				for dy := range scale {
					for dx := range scale {
						img.SetGray(x*scale+dx, (2*row+i)*scale+dy, v)
					}
				}
			}
		}
	}
	return img, nil
}
