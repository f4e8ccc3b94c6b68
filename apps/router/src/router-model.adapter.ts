import { QUESTION_TYPES, type QuestionType } from '@rsmoe/contracts';
import { InvalidRoutingRequestError, type RouterModel, type RouterModelInput, type RouterPrediction } from '@rsmoe/routing';
import { RouterClassifier, RuntimeInputError } from '@rsmoe/runtime';

function isQuestionType(label: string): label is QuestionType {
  return (QUESTION_TYPES as readonly string[]).includes(label);
}

/**
 * The pack's learned router (libs/runtime RouterClassifier) behind the InstructionRouter's RouterModel
 * seam: the scene classifier's hint fills `{scene}`, the question classifier picks the question type.
 * An image the classifier cannot decode is the client's error (invalid argument), found before any
 * expert is asked.
 */
export class ClassifierRouterModel implements RouterModel {
  private constructor(private readonly classifier: RouterClassifier) {}

  static async load(dir: string): Promise<ClassifierRouterModel> {
    const classifier = await RouterClassifier.load(dir);
    const unknown = classifier.questionLabels.filter((label) => !isQuestionType(label));
    if (unknown.length > 0) throw new Error(`router model ${dir}: question labels ${unknown.join(', ')} are not question types (${QUESTION_TYPES.join(', ')})`);
    return new ClassifierRouterModel(classifier);
  }

  async predict(input: RouterModelInput): Promise<RouterPrediction> {
    try {
      const [scene, question] = await Promise.all([
        input.image ? this.classifier.classifyScene(input.image) : undefined,
        input.task === 'vqa' && input.question ? this.classifier.classifyQuestion(input.question) : undefined,
      ]);
      return {
        ...(scene ? { sceneClass: scene.hint } : {}),
        ...(question && isQuestionType(question.label) ? { questionType: question.label } : {}),
      };
    } catch (error) {
      if (error instanceof RuntimeInputError) throw new InvalidRoutingRequestError(`the image cannot be used: ${error.code}: ${error.message}`);
      throw error;
    }
  }

  release(): Promise<void> {
    return this.classifier.release();
  }
}
