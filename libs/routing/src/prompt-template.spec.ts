import { describe, expect, it } from 'vitest';
import { renderPrompt } from './prompt-template';

describe('renderPrompt', () => {
  it('fills the question and the scene', () => {
    expect(renderPrompt('the {scene} scene . answer the question : {question}', { question: 'is there a road ?', scene: 'residential' })).toBe(
      'the residential scene . answer the question : is there a road ?',
    );
  });

  it('drops a placeholder without a value and collapses the spaces it leaves', () => {
    expect(renderPrompt('describe the {scene} image .', {})).toBe('describe the image .');
  });

  it('never expands placeholders that arrive inside a value', () => {
    expect(renderPrompt('answer : {question}', { question: 'what is {scene} ?', scene: 'x' })).toBe('answer : what is {scene} ?');
  });
});
